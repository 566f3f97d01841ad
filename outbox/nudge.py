"""The on-commit nudge: wake a drainer soon after an event commits, without NOTIFY per commit.

A transaction that wrote an event registers ``nudge`` on commit, unless a nudge ran less
than ``OUTBOX_NUDGE_INTERVAL_SECONDS`` ago. ``nudge`` only notes the time and sets a flag; a
daemon thread of the process looks at the flag at most every
``OUTBOX_NUDGE_INTERVAL_SECONDS`` and then sends one ``outbox.drain`` task, or not. So a
request never waits for the broker (nor fails because it is down).

It sends when a drainer may have stopped: on the first commit after this process was quiet
for ``OUTBOX_DRAIN_LINGER_SECONDS`` (a drainer gives up after that long without work), and
otherwise every ``OUTBOX_SWEEP_SECONDS`` at most while commits keep coming. While commits
flow, the drainer the first nudge woke is still draining (it sees new events by itself), so
a nudge every half second from every process only cost CPU here, on the broker and in
workers that found the slot taken. Celery beat's sweep starts a drain every few seconds in
case a nudge was lost.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from django.conf import settings
from django.db import transaction

logger = logging.getLogger("banksim.outbox")


class _Nudger:
    def __init__(self) -> None:
        self._pid = -1
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._last_commit = -math.inf
        self._after_quiet = False

    def wants_commit_hook(self) -> bool:
        # Hooks more often than the thread looks at the flag only cost each posting its
        # on_commit and nudge calls (~25 us of a transfer's Python, measured): while commits
        # flow, one hook per look is enough. Only a hook that ran (a commit) counts, so a
        # rolled-back transaction leaves the next one to register again.
        return time.monotonic() - self._last_commit >= settings.OUTBOX_NUDGE_INTERVAL_SECONDS

    def nudge(self) -> None:
        if self._pid != os.getpid():
            self._start()
        now = time.monotonic()
        if now - self._last_commit >= settings.OUTBOX_DRAIN_LINGER_SECONDS:
            self._after_quiet = True
        self._last_commit = now
        self._wake.set()

    def _start(self) -> None:
        # After a fork the parent's thread does not exist in the child: start our own.
        with self._lock:
            if self._pid == os.getpid():
                return
            self._wake = threading.Event()
            self._last_commit = -math.inf
            threading.Thread(target=self._run, name="outbox-nudge", daemon=True).start()
            self._pid = os.getpid()

    def _due(self, sent_at: float) -> bool:
        if self._after_quiet:
            self._after_quiet = False
            return True
        return time.monotonic() - sent_at >= settings.OUTBOX_SWEEP_SECONDS

    def _run(self) -> None:
        from banksim.celery import app

        failures = 0
        sent_at = -math.inf
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._due(sent_at):
                try:
                    app.send_task(
                        "outbox.drain",
                        queue=settings.OUTBOX_QUEUE,
                        # A nudge is worth nothing later than the sweep that replaces it: the
                        # worker skips it (expires) and RabbitMQ drops it unread (expiration,
                        # a per-message TTL), so nudges sent while no worker runs do not pile
                        # up in the queue.
                        expires=settings.OUTBOX_NUDGE_EXPIRES_SECONDS,
                        expiration=settings.OUTBOX_NUDGE_EXPIRES_SECONDS,
                        retry=False,
                    )
                    sent_at = time.monotonic()
                    failures = 0
                except Exception as exc:  # the broker is down: the beat sweep covers for us
                    failures += 1
                    if failures == 1:
                        logger.warning("outbox nudge not sent (%s); relying on the sweep", exc)
                    time.sleep(min(30.0, 2.0**failures))
            time.sleep(settings.OUTBOX_NUDGE_INTERVAL_SECONDS)


_nudger = _Nudger()


def nudge() -> None:
    """Ask for a drain soon (never blocks, never raises)."""
    if settings.OUTBOX_NUDGE:
        _nudger.nudge()


def nudge_on_commit() -> None:
    """Nudge when the current transaction commits (nothing if it rolls back).

    Not every commit registers: within ``OUTBOX_NUDGE_INTERVAL_SECONDS`` of the last nudge a
    new one would only set a flag that is already set.
    """
    if settings.OUTBOX_NUDGE and _nudger.wants_commit_hook():
        transaction.on_commit(nudge)
