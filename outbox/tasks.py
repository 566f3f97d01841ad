"""The outbox's Celery tasks: thin interfaces, one service call each.

``outbox.drain`` is sent by on-commit nudges and by beat's sweep; CELERY_TASK_ROUTES puts it
on the ``outbox`` queue (a worker pool of its own in production) and the purge on
``maintenance``. Every run is safe twice and
in parallel: drainer slots and lane locks decide who publishes what, and an event published
twice is one consumers drop by id. ``acks_late`` with ``reject_on_worker_lost``: a worker
killed mid-run gives its message back, and the events it had not marked are published by the
next run.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from banksim.core import clock
from outbox import services
from outbox.breaker import default_breaker
from outbox.publishers import default_publisher


@shared_task(
    name="outbox.drain",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def drain_task(**kwargs: object) -> None:
    """Publish pending events until idle, or for at most OUTBOX_DRAIN_MAX_SECONDS."""
    report = services.outbox_drain(
        publisher=default_publisher(),
        breaker=default_breaker(),
        config=services.DrainConfig.from_settings(),
        clock=clock.now,
    )
    if report.more_work:
        # A run is bounded so one task never holds a worker for ever; a fresh one carries on.
        drain_task.apply_async(queue=settings.OUTBOX_QUEUE)


@shared_task(
    name="outbox.purge",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def purge_task(**kwargs: object) -> None:
    """Delete published events older than OUTBOX_RETENTION_DAYS (hourly; safe to run twice)."""
    services.outbox_purge(now=clock.now(), retention=timedelta(days=settings.OUTBOX_RETENTION_DAYS))
