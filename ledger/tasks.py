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


@shared_task(
    name="ledger.office_fold",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def office_fold_task(**kwargs: object) -> None:
    """Fold office-balance deltas into their rows (scheduled every few seconds)."""
    services.office_balances_fold()
