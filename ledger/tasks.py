"""The ledger's Celery tasks: thin interfaces, one service call each."""

from __future__ import annotations

from celery import shared_task

from banksim.core import clock
from ledger import services


@shared_task(
    name="ledger.idempotency_purge",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def idempotency_purge_task(**kwargs: object) -> None:
    """Delete expired idempotency records (scheduled hourly; safe to run twice)."""
    services.idempotency_purge(now=clock.now())
