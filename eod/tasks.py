"""The EOD Celery task: a thin interface over ``eod.services.eod_run``.

Beat starts it daily (``CELERY_BEAT_SCHEDULE["eod-run"]``); the supervisor API and the admin
enqueue it too. The simulator and the tests call the service directly.
"""

from __future__ import annotations

from celery import shared_task

from banksim.core import clock
from eod import services


@shared_task(
    name="eod.run",
    # Queue "eod" via CELERY_TASK_ROUTES["eod.*"]: a long run never delays other work.
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def eod_run_task(*, calendar_code: str = "MAIN", **kwargs: object) -> None:
    """Close (or resume closing) the calendar's business day. Safe to run twice: a redelivered
    message resumes at the first step not done, and a second concurrent run is refused."""
    services.eod_run(calendar_code=calendar_code, now=clock.now())
