"""The audit app's Celery task: a thin interface over the sealer."""

from __future__ import annotations

from celery import shared_task

from audit import services


@shared_task(
    name="audit.seal",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def audit_seal_task(**kwargs: object) -> None:
    """Link the audit rows committed since the last run into the hash chain (safe twice)."""
    services.audit_seal()
