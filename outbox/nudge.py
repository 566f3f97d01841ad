"""The on-commit nudge: wake a drainer soon after an event commits, without NOTIFY per commit.

A transaction that wrote an event registers ``nudge`` on commit. ``nudge`` only sets a flag;
a daemon thread of the process sends one ``outbox.drain`` task for all the flags set since
its last send, and then waits ``OUTBOX_NUDGE_INTERVAL_SECONDS`` before it sends again. So a
request never waits for the broker (nor fails because it is down), and a busy process sends
at most a few nudges a second whatever its commit rate. Nudges are an optimisation only: a
drainer that is already running sees new events by itself (it lingers before it stops), and
Celery beat's sweep starts a drain every few seconds in case a nudge was lost.
"""

from __future__ import annotations

import logging
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

    def nudge(self) -> None:
        if self._pid != os.getpid():
            self._start()
        self._wake.set()

    def _start(self) -> None:
        # After a fork the parent's thread does not exist in the child: start our own.
        with self._lock:
            if self._pid == os.getpid():
                return
            self._wake = threading.Event()
            threading.Thread(target=self._run, name="outbox-nudge", daemon=True).start()
            self._pid = os.getpid()

    def _run(self) -> None:
        from banksim.celery import app

        failures = 0
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                app.send_task(
                    "outbox.drain",
                    queue=settings.OUTBOX_QUEUE,
                    # A nudge is worth nothing later than the sweep that replaces it: the worker
                    # skips it (expires) and RabbitMQ drops it unread (expiration, a per-message
                    # TTL), so nudges sent while no worker runs do not pile up in the queue.
                    expires=settings.OUTBOX_NUDGE_EXPIRES_SECONDS,
                    expiration=settings.OUTBOX_NUDGE_EXPIRES_SECONDS,
                    retry=False,
                )
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
    """Nudge when the current transaction commits (nothing if it rolls back)."""
    if settings.OUTBOX_NUDGE:
        transaction.on_commit(nudge)
