"""The reference consumer: what every consumer of BankSim events must do, in the smallest form.

Delivery is at least once, so a consumer

1. de-duplicates by the envelope's ``id`` (a drainer killed between the broker's confirm and
   marking the row publishes the same event again, with the same id);
2. applies each aggregate's (``subject``'s) events in ``sequence`` order, 1, 2, 3..., holding
   back an event that arrives before its predecessor and reporting the gap if it never comes;
3. acknowledges a message only after it has applied (or dropped) it.

``ReferenceConsumer`` keeps its state in memory, which is enough for tests and for
``manage.py events_consume``; a real consumer keeps the seen ids and the next expected
sequence per subject in its own database, in the transaction of its own change.
``consume_amqp`` reads a queue bound to the events exchange; ``consume_jsonl`` reads the
embedded run's JSON-lines files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import amqp

Envelope = dict[str, Any]


@dataclass
class ReferenceConsumer:
    """Apply each event once, in per-subject sequence order."""

    apply: Callable[[Envelope], None] = lambda envelope: None
    # A consumer that joins a running stream starts each subject at the first sequence seen.
    start_at_first_seen: bool = False
    received: int = 0
    duplicates: int = 0
    # Events that arrived before their predecessor (held back until it came).
    out_of_order: int = 0
    applied: list[Envelope] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _next: dict[str, int] = field(default_factory=dict)
    _early: dict[str, dict[int, Envelope]] = field(default_factory=dict)
    _ids_at: dict[tuple[str, int], str] = field(default_factory=dict)

    def receive(self, envelope: Envelope) -> str:
        """Take one delivery; return ``applied``, ``duplicate`` or ``held`` (waits for a gap)."""
        self.received += 1
        event_id, subject, sequence = envelope["id"], envelope["subject"], envelope["sequence"]
        if event_id in self._seen:
            self.duplicates += 1
            return "duplicate"
        self._seen.add(event_id)
        other = self._ids_at.setdefault((subject, sequence), event_id)
        if other != event_id:
            # Two different events claim one position: a producer bug, never a redelivery.
            self.conflicts.append(f"{subject} #{sequence}: {other} and {event_id}")
            return "duplicate"
        expected = self._next.get(subject)
        if expected is None:
            expected = sequence if self.start_at_first_seen else 1
        if sequence < expected:
            self.duplicates += 1
            return "duplicate"
        if sequence > expected:
            self._next[subject] = expected
            self._early.setdefault(subject, {})[sequence] = envelope
            self.out_of_order += 1
            return "held"
        self._apply(envelope)
        expected += 1
        early = self._early.get(subject, {})
        while expected in early:
            self._apply(early.pop(expected))
            expected += 1
        self._next[subject] = expected
        return "applied"

    def _apply(self, envelope: Envelope) -> None:
        self.apply(envelope)
        self.applied.append(envelope)

    def gaps(self) -> dict[str, tuple[int, list[int]]]:
        """Subjects with events held back: (the sequence still missing, those waiting)."""
        return {
            subject: (self._next[subject], sorted(waiting))
            for subject, waiting in self._early.items()
            if waiting
        }

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "applied": len(self.applied),
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "held": sum(len(w) for w in self._early.values()),
            "gaps": {s: {"missing": m, "waiting": w} for s, (m, w) in self.gaps().items()},
            "conflicts": self.conflicts,
        }


def amqp_connect(url: str) -> amqp.Connection:
    parts = urlsplit(url)
    conn = amqp.Connection(
        host=f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
        ssl=parts.scheme == "amqps",
        connect_timeout=5,
    )
    conn.connect()
    return conn


def declare_queue(
    channel: amqp.Channel, *, exchange: str, queue: str, bindings: Iterable[str] = ("#",)
) -> None:
    """Declare the exchange (as the publisher does) and a durable queue bound to it."""
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    channel.queue_declare(queue, durable=True, auto_delete=False)
    for binding in bindings:
        channel.queue_bind(queue, exchange, routing_key=binding)


def consume_amqp(
    *,
    url: str,
    queue: str,
    consumer: ReferenceConsumer,
    exchange: str | None = None,
    bindings: Iterable[str] = ("#",),
    max_events: int | None = None,
    idle_timeout: float = 2.0,
    prefetch: int = 200,
    until: Callable[[ReferenceConsumer], bool] | None = None,
) -> ReferenceConsumer:
    """Read ``queue`` until ``idle_timeout`` passes without a message (or a stop condition).

    With ``exchange`` the queue is declared and bound first. Each message is acknowledged
    after the consumer took it, so a consumer that dies re-reads what it had not finished.
    """
    conn = amqp_connect(url)
    try:
        channel = conn.channel()
        if exchange is not None:
            declare_queue(channel, exchange=exchange, queue=queue, bindings=bindings)
        channel.basic_qos(0, prefetch, False)

        def on_message(message: amqp.Message) -> None:
            consumer.receive(json.loads(message.body))
            channel.basic_ack(message.delivery_tag)

        channel.basic_consume(queue, callback=on_message)
        last = time.monotonic()
        while True:
            if max_events is not None and consumer.received >= max_events:
                break
            if until is not None and until(consumer):
                break
            try:
                conn.drain_events(timeout=0.2)
                last = time.monotonic()
            except TimeoutError:
                if time.monotonic() - last >= idle_timeout:
                    break
    finally:
        conn.collect()
    return consumer


def consume_jsonl(*, paths: Iterable[Path], consumer: ReferenceConsumer) -> ReferenceConsumer:
    """Feed JSON-lines files (the embedded sink) through the consumer, in file order."""
    for path in paths:
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    consumer.receive(json.loads(line))
    return consumer
