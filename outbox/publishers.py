"""Where drained events go: a RabbitMQ topic exchange, or JSON lines on disk.

A publisher takes a batch of envelopes (already serialised by the claim query) and returns
only when the sink has *confirmed* every one of them, or raises ``PublishError`` saying how
many of the batch, from the start, were confirmed. The drainer marks exactly those published.

* ``AmqpPublisher`` (``amqp://`` / ``amqps://``): py-amqp, the transport kombu and Celery use,
  with RabbitMQ publisher confirms. The whole batch is written, then the confirms are awaited
  together, so a batch costs one round trip to the broker, not one per event. Messages are
  persistent, routed by the event type without ``banksim.`` (``transaction.posted``), and
  carry the event id as ``message_id``.
* ``JsonLinesPublisher`` (``file:///path``): the embedded run's sink when there is no
  RabbitMQ. Appends one envelope per line to ``<path>/events-<business date>.jsonl`` and
  fsyncs; the fsync is the confirm.

Connections are kept open between batches and dropped on any error, so the next batch starts
from a fresh connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import amqp

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class PublishError(Exception):
    """The sink did not confirm the whole batch; ``confirmed`` events from the start were."""

    def __init__(self, message: str, *, confirmed: int = 0) -> None:
        super().__init__(message)
        self.confirmed = confirmed


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    event_id: str
    type: str
    routing_key: str
    day: str  # the business date (or the enqueue date) in ISO form: the JSON-lines file
    body: bytes


class Publisher(Protocol):
    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Return when every event is confirmed. :raises PublishError: otherwise."""
        ...

    def probe(self) -> None:
        """Connect without publishing (a half-open circuit's test). :raises PublishError:"""
        ...

    def close(self) -> None: ...


class AmqpPublisher:
    """Publish to a durable topic exchange with publisher confirms."""

    def __init__(
        self,
        *,
        url: str,
        exchange: str,
        connect_timeout: float = 5.0,
        confirm_timeout: float = 15.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps", "pyamqp"):
            raise ValueError(f"not an AMQP URL: {parts.scheme}://")
        self.exchange = exchange
        self._params: dict[str, Any] = {
            "host": f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
            "userid": unquote(parts.username or "guest"),
            "password": unquote(parts.password or "guest"),
            "virtual_host": unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
            "ssl": parts.scheme == "amqps",
            "connect_timeout": connect_timeout,
            # Publish-only and short-lived between batches: a dead socket shows up as an
            # error on the next publish, which drops the connection and retries.
            "heartbeat": 0,
        }
        self.confirm_timeout = confirm_timeout
        self.where = f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}/{exchange}"
        self._conn: amqp.Connection | None = None
        self._channel: amqp.Channel | None = None
        self._tag = 0  # delivery tag of the last message published on this channel
        self._unconfirmed: set[int] = set()
        self._nacked: set[int] = set()

    # --- connection --------------------------------------------------------------------

    def _connect(self) -> amqp.Channel:
        if self._channel is not None:
            return self._channel
        try:
            conn = amqp.Connection(**self._params)
            conn.connect()
            channel = conn.channel()
            channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
            channel.confirm_select()
        except Exception as exc:
            self.close()
            raise PublishError(f"cannot reach {self.where}: {_describe(exc)}") from exc
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._conn, self._channel, self._tag = conn, channel, 0
        self._unconfirmed, self._nacked = set(), set()
        return channel

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        done = {t for t in self._unconfirmed if t <= delivery_tag} if multiple else {delivery_tag}
        self._nacked |= done & self._unconfirmed
        self._unconfirmed -= done

    def probe(self) -> None:
        self._connect()

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.collect()  # drop the socket without a closing handshake that could hang
            except Exception:  # noqa: S110 - closing a broken connection must not raise
                pass

    # --- publishing --------------------------------------------------------------------

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        channel = self._connect()
        assert self._conn is not None
        first = self._tag + 1
        try:
            with _corked(self._conn):
                for event in events:
                    message = amqp.Message(
                        event.body,
                        content_type=CONTENT_TYPE,
                        delivery_mode=2,
                        message_id=event.event_id,
                        type=event.type,
                    )
                    channel.basic_publish(
                        message, exchange=self.exchange, routing_key=event.routing_key
                    )
                    self._tag += 1
                    self._unconfirmed.add(self._tag)
            deadline = time.monotonic() + self.confirm_timeout
            # Every earlier batch was confirmed or its connection dropped (which resets this).
            while self._unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no confirm within {self.confirm_timeout:g}s")
                try:
                    self._conn.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
        except Exception as exc:
            confirmed = self._confirmed_prefix(first, len(events))
            self.close()
            raise PublishError(
                f"publish to {self.where} failed: {_describe(exc)}", confirmed=confirmed
            ) from exc
        if self._nacked & set(range(first, first + len(events))):
            confirmed = self._confirmed_prefix(first, len(events))
            self._nacked.clear()
            raise PublishError(f"{self.where} refused (nacked) an event", confirmed=confirmed)

    def _confirmed_prefix(self, first: int, count: int) -> int:
        for i in range(count):
            tag = first + i
            if tag > self._tag or tag in self._unconfirmed or tag in self._nacked:
                return i
        return count


class JsonLinesPublisher:
    """Append envelopes to ``<directory>/events-<day>.jsonl``; fsync is the confirm."""

    def __init__(self, *, directory: Path) -> None:
        self.directory = directory
        self.where = str(directory)

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        by_day: dict[str, list[bytes]] = {}
        for event in events:
            by_day.setdefault(event.day, []).append(event.body)
        done = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for day, bodies in by_day.items():
                path = self.directory / f"events-{day}.jsonl"
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    # One write per file: O_APPEND keeps concurrent drainers' lines whole.
                    os.write(fd, b"".join(body + b"\n" for body in bodies))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                done += len(bodies)
        except OSError as exc:
            # Days are written in the batch's order only when the batch has one day; with
            # several, report nothing confirmed and let the whole batch be retried.
            raise PublishError(
                f"writing {self.where} failed: {exc}", confirmed=done if len(by_day) == 1 else 0
            ) from exc

    def probe(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot create {self.where}: {exc}") from exc

    def close(self) -> None:
        return None


def publisher_for(*, url: str, exchange: str, confirm_timeout: float = 15.0) -> Publisher:
    """Build the publisher a URL names (``amqp[s]://...`` or ``file:///absolute/dir``).

    :raises ValueError: for any other scheme
    """
    scheme = urlsplit(url).scheme
    if scheme in ("amqp", "amqps", "pyamqp"):
        return AmqpPublisher(url=url, exchange=exchange, confirm_timeout=confirm_timeout)
    if scheme == "file":
        return JsonLinesPublisher(directory=Path(unquote(urlsplit(url).path)))
    raise ValueError(f"OUTBOX_PUBLISH_URL must be amqp://, amqps:// or file://, not {scheme}://")


@contextlib.contextmanager
def _corked(conn: amqp.Connection) -> Iterator[None]:
    """Hold the batch's frames in the kernel and send them as full packets once it is written.

    Without it every message leaves as a small packet of its own, and over loopback the
    sender pays for much of the receiver's work per packet. Linux only; a no-op elsewhere.
    """
    cork = getattr(socket, "TCP_CORK", None)
    sock = getattr(getattr(conn, "transport", None), "sock", None)
    if cork is None or sock is None:
        yield
        return
    sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


_process_publisher: tuple[int, str, Publisher] | None = None


def default_publisher() -> Publisher:
    """This process's publisher for ``OUTBOX_PUBLISH_URL``, kept between drain runs."""
    global _process_publisher
    from django.conf import settings

    key = f"{settings.OUTBOX_PUBLISH_URL}|{settings.OUTBOX_EXCHANGE}"
    cached = _process_publisher
    if cached is None or cached[0] != os.getpid() or cached[1] != key:
        publisher = publisher_for(
            url=settings.OUTBOX_PUBLISH_URL,
            exchange=settings.OUTBOX_EXCHANGE,
            confirm_timeout=settings.OUTBOX_CONFIRM_TIMEOUT_SECONDS,
        )
        cached = _process_publisher = (os.getpid(), key, publisher)
    return cached[2]
