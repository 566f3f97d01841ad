"""Helpers for tests and benchmarks that publish to a real RabbitMQ.

``rabbit_stream`` gives one run its own exchange and a queue bound to all of it (names carry
a random suffix, so parallel runs never see each other's events) and deletes both afterwards.
``drain_until_idle`` runs the real drain loop until nothing is due.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from banksim.core import clock
from outbox.breaker import CircuitBreaker
from outbox.consumer import ReferenceConsumer, amqp_connect, consume_amqp, declare_queue
from outbox.publishers import AmqpPublisher, Publisher
from outbox.services import DrainConfig, DrainReport, outbox_drain, outbox_publish_batch


@dataclass(frozen=True)
class RabbitStream:
    url: str
    exchange: str
    queue: str

    def publisher(self, **kwargs: Any) -> AmqpPublisher:
        return AmqpPublisher(url=self.url, exchange=self.exchange, **kwargs)

    def consume(
        self,
        *,
        consumer: ReferenceConsumer | None = None,
        expect: int | None = None,
        idle_timeout: float = 1.0,
    ) -> ReferenceConsumer:
        """Read the queue until ``expect`` distinct events arrived or it stays quiet."""
        consumer = consumer if consumer is not None else ReferenceConsumer()
        return consume_amqp(
            url=self.url,
            queue=self.queue,
            consumer=consumer,
            idle_timeout=idle_timeout,
            until=None if expect is None else (lambda c: c.received - c.duplicates >= expect),
        )


@contextmanager
def rabbit_stream(*, url: str, prefix: str = "banksim.test") -> Iterator[RabbitStream]:
    suffix = uuid.uuid4().hex[:12]
    stream = RabbitStream(url=url, exchange=f"{prefix}.{suffix}", queue=f"{prefix}.{suffix}.all")
    conn = amqp_connect(url)
    try:
        channel = conn.channel()
        declare_queue(channel, exchange=stream.exchange, queue=stream.queue)
        yield stream
    finally:
        try:
            channel = conn.channel()
            channel.queue_delete(stream.queue)
            channel.exchange_delete(stream.exchange)
        finally:
            conn.collect()


def drain_until_idle(
    *,
    publisher: Publisher,
    breaker: CircuitBreaker | None = None,
    after_publish: Callable[[], None] | None = None,
    **config: Any,
) -> DrainReport:
    """Run the drain loop until nothing is due (no linger, no deadline by default)."""
    # A deadline, so a test whose broker never comes back fails instead of hanging.
    settings_for_test: dict[str, Any] = {"linger_seconds": 0.0, "max_seconds": 30.0}
    settings_for_test.update(config)
    return outbox_drain(
        publisher=publisher,
        breaker=breaker if breaker is not None else CircuitBreaker(),
        config=DrainConfig.from_settings(**settings_for_test),
        clock=clock.now,
        sleep=lambda seconds: None,
        after_publish=after_publish,
    )


class TcpProxy:
    """A TCP forwarder to the broker that a test can take down and bring back.

    ``stop`` closes the listening socket and cuts every open connection, which is what a
    client sees when RabbitMQ stops; ``start`` listens again on the same port. It lets a test
    show "the broker went away mid-run" without stopping the machine's RabbitMQ.
    """

    def __init__(self, *, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self.port

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(), so the port is free at once.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def publish_pending(*, publisher: Publisher, **config: Any) -> DrainReport:
    """Publish batch after batch inside the caller's transaction until none is claimed.

    For tests that cannot commit (the drain loop needs real commits and a free connection):
    the same claim, publish and mark steps, without slots, breaker or pauses.
    """
    drain_config = DrainConfig.from_settings(**config)
    report = DrainReport()
    while True:
        result = outbox_publish_batch(publisher=publisher, config=drain_config, now=clock.now())
        if not result.claimed:
            return report
        report.add(result)
