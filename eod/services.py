"""The end-of-day orchestrator: run the steps of a business date in order, checkpointed.

Design overview (docs/eod.md):

* ``eod_run`` finds the day to close: the oldest unfinished run of the calendar if there is
  one (a run whose ``close_day`` committed but whose checkpoint did not still has to finish),
  else the calendar's current business date. It puts the day into ``eod_running`` (teller and
  API postings are refused from then on, batch postings are not) and runs every step of
  ``eod.steps.STEP_ORDER`` that is not yet ``done``, in order.
* Each step owns its transactions and is idempotent per business date; the orchestrator
  records its checkpoint (``EodStep``) in separate short transactions: ``running`` before,
  ``done`` with the outcome after. A process killed anywhere leaves a step ``running`` or
  ``pending``; the next ``eod_run`` starts again at that step, which re-does only what did not
  commit. Progress (rows done / total) is written in its own transaction per batch, so the
  admin and the API see it while the step runs.
* A step that refuses to let the day close (preconditions, the integrity gate) raises
  ``EodBlocked``: the run is ``blocked``; any other exception makes it ``failed``. Either way
  the step keeps the reason, the day stays in ``eod_running`` and a later run resumes it.
* One run at a time per database: a session advisory lock is held for the whole run.
* Timestamps are the caller's ``now`` plus the monotonic time elapsed since the call, so the
  service reads no wall clock and tests can inject time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from accounts.models import Calendar
from accounts.services import CalendarNotFound, calendar_eod_begin
from banksim.core.errors import BusinessRuleViolation, Conflict
from eod.models import EodRun, EodStep
from eod.steps import STEP_ORDER, STEP_PATHS, StepContext, StepOutcome, load_step

logger = logging.getLogger(__name__)

# Class id of the session advisory lock that makes EOD runs exclusive (objid: calendar id).
_RUN_LOCK_CLASS = 0x0E0D


class EodBlocked(BusinessRuleViolation):
    """A step found a reason the day must not close (unapproved items, ledger violations)."""

    code = "eod.blocked"
    title = "End of day is blocked"


class EodAlreadyRunning(Conflict):
    code = "eod.already_running"
    title = "End of day is already running"


class SimulatedKill(BaseException):
    """Raised by the test hook (``EOD_TEST_KILL_POINT``) to stop a run as a kill would.

    A BaseException, so no ``except Exception`` in a step or in the orchestrator catches it:
    the run stops with the step still ``running`` and nothing recorded, exactly like a
    process killed at that point.
    """


@dataclass(frozen=True)
class ProgressLine:
    step: str
    rows_done: int
    rows_total: int
    rows_per_s: float
    eta_s: float | None

    def __str__(self) -> str:
        pct = f"{100 * self.rows_done // self.rows_total}%" if self.rows_total else "-"
        eta = f"ETA {self.eta_s:.0f}s" if self.eta_s is not None else ""
        return (
            f"{self.step}  {self.rows_done}/{self.rows_total}  {pct}  "
            f"{self.rows_per_s:,.0f} rows/s  {eta}".rstrip()
        )


Reporter = Callable[[ProgressLine], None]


def _kill_point() -> tuple[str, str] | None:
    """``EOD_TEST_KILL_POINT = "<step>:progress"`` (at the step's first progress call) or
    ``"<step>:end"`` (after the step returned, before its checkpoint). Tests only."""
    point = getattr(settings, "EOD_TEST_KILL_POINT", None)
    if not point:
        return None
    step, _, where = str(point).partition(":")
    return step, where or "end"


def _emit(factory_name: str, **kwargs: Any) -> None:
    """Write an EOD event to the outbox in the caller's transaction, if the outbox defines it.

    The outbox app owns the event catalogue; an event type it does not (yet) define is not
    invented here.
    """
    try:
        from outbox import events
        from outbox.services import outbox_enqueue
    except ImportError:
        return
    factory = getattr(events, factory_name, None)
    if factory is not None:
        outbox_enqueue(event=factory(**kwargs))


class _Clock:
    """``now`` at the call plus the monotonic time elapsed since (see the module docstring)."""

    def __init__(self, now: datetime) -> None:
        self.base = now
        self.t0 = time.monotonic()

    def __call__(self) -> datetime:
        return self.base + timedelta(seconds=time.monotonic() - self.t0)


def _run_to_resume(calendar: Calendar) -> date:
    unfinished = (
        EodRun.objects.filter(calendar=calendar)
        .exclude(status=EodRun.Status.DONE)
        .filter(business_date__lte=calendar.business_date)
        .order_by("business_date")
        .values_list("business_date", flat=True)
        .first()
    )
    return unfinished if unfinished is not None else calendar.business_date


def _open_run(calendar_code: str, started_at: datetime) -> tuple[EodRun, bool, Calendar]:
    """Create (or find) the run of the day to close, with a pending row per step.

    Requires the caller's transaction; locks the calendar row until it ends.
    """
    calendar = Calendar.objects.select_for_update().filter(code=calendar_code).first()
    if calendar is None:
        raise CalendarNotFound(f"no calendar {calendar_code!r}; seed the bank first")
    day = _run_to_resume(calendar)
    run, created = EodRun.objects.select_for_update().get_or_create(
        calendar=calendar,
        business_date=day,
        defaults={"status": EodRun.Status.RUNNING, "started_at": started_at},
    )
    existing = set(run.steps.values_list("name", flat=True))
    EodStep.objects.bulk_create(
        [
            EodStep(run=run, name=name, position=position)
            for position, name in enumerate(STEP_ORDER, start=1)
            if name not in existing
        ]
    )
    return run, created, calendar


def _start(*, calendar_code: str, clock: _Clock) -> EodRun:
    """Create or reopen the run of the day to close and put the calendar in eod_running."""
    with transaction.atomic(durable=True):
        run, created, calendar = _open_run(calendar_code, clock())
        if run.status == EodRun.Status.DONE:
            return run
        if run.business_date == calendar.business_date:
            calendar_eod_begin(code=calendar_code, business_date=run.business_date)
        if not created:
            run.status = EodRun.Status.RUNNING
            run.error = ""
            run.finished_at = None
            run.save(update_fields=["status", "error", "finished_at"])
        # Only once per day, however often the run is resumed.
        if not run.steps.exclude(status=EodStep.Status.PENDING).exists():
            _emit(
                "eod_started",
                calendar_code=calendar_code,
                business_date=run.business_date,
                now=clock(),
            )
        return run


def _run_lock(cursor: Any, calendar_id: int) -> bool:
    cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_RUN_LOCK_CLASS, calendar_id])
    return bool(cursor.fetchone()[0])


def _run_unlock(cursor: Any, calendar_id: int) -> None:
    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_RUN_LOCK_CLASS, calendar_id])


def eod_request(*, calendar_code: str, now: datetime) -> EodRun:
    """Record the run of the day to close and have a worker run it (the ``eod.run`` task).

    The task is enqueued when this transaction commits; under ``CELERY_TASK_ALWAYS_EAGER`` it
    runs there and then, so the call returns after the whole EOD. A run already recorded for
    the day is returned as it is (the task resumes it).

    :raises CalendarNotFound: if there is no such calendar
    :raises EodAlreadyRunning: if a run of this calendar is executing right now
    """
    from eod.tasks import eod_run_task

    with transaction.atomic(durable=True):
        run, _, calendar = _open_run(calendar_code, now)
        with connection.cursor() as cursor:
            if not _run_lock(cursor, calendar.pk):
                raise EodAlreadyRunning(f"an end of day of calendar {calendar_code} is running")
            _run_unlock(cursor, calendar.pk)
        transaction.on_commit(
            lambda: eod_run_task.apply_async(kwargs={"calendar_code": calendar_code})
        )
        return run


def _progress_fn(
    run: EodRun, step: EodStep, clock: _Clock, reporter: Reporter | None
) -> Callable[[int, int], None]:
    t0 = time.monotonic()
    kill = _kill_point()
    # ``eod.progress`` at most once per interval per step: a step of a million rows reports
    # thousands of batches, and consumers want a pulse, not every batch. A step shorter than
    # the interval is announced only by ``eod.step_finished``.
    interval = float(getattr(settings, "EOD_PROGRESS_EVENT_SECONDS", 5.0))
    announced = [t0]

    def progress(rows_done: int, rows_total: int) -> None:
        elapsed = max(time.monotonic() - t0, 1e-6)
        rate = rows_done / elapsed
        eta = (rows_total - rows_done) / rate if rate > 0 and rows_total >= rows_done else None
        # Its own short transaction (or autocommit): visible to the admin and API at once.
        with transaction.atomic():
            EodStep.objects.filter(pk=step.pk).update(rows_done=rows_done, rows_total=rows_total)
            if time.monotonic() - announced[0] >= interval:
                announced[0] = time.monotonic()
                _emit(
                    "eod_progress",
                    calendar_code=run.calendar.code,
                    business_date=run.business_date,
                    step=step.name,
                    rows_done=rows_done,
                    rows_total=rows_total,
                    rows_per_s=rate,
                    eta_seconds=eta,
                    now=clock(),
                )
        if reporter is not None:
            reporter(ProgressLine(step.name, rows_done, rows_total, rate, eta))
        if kill == (step.name, "progress"):
            raise SimulatedKill(f"simulated kill in {step.name} after its first batch")

    return progress


def _run_step(run: EodRun, step: EodStep, clock: _Clock, reporter: Reporter | None) -> None:
    """Run one step and checkpoint it. Exceptions propagate after the step is marked failed."""
    with transaction.atomic(durable=True):
        EodStep.objects.filter(pk=step.pk).update(
            status=EodStep.Status.RUNNING,
            started_at=clock(),
            finished_at=None,
            error="",
            attempts=step.attempts + 1,
        )
    fn = load_step(step.name)
    t0 = time.monotonic()
    if fn is None:
        outcome = StepOutcome(rows=0, summary={"skipped": f"{STEP_PATHS[step.name]} not installed"})
    else:
        context = StepContext(
            business_date=run.business_date,
            calendar_code=run.calendar.code,
            now=clock(),
            progress=_progress_fn(run, step, clock, reporter),
        )
        try:
            outcome = fn(context)
        except Exception as exc:
            with transaction.atomic(durable=True):
                EodStep.objects.filter(pk=step.pk).update(
                    status=EodStep.Status.FAILED, finished_at=clock(), error=_describe(exc)
                )
            raise
        if _kill_point() == (step.name, "end"):
            raise SimulatedKill(f"simulated kill after {step.name}, before its checkpoint")
    seconds = time.monotonic() - t0
    summary = {
        **outcome.summary,
        "seconds": round(seconds, 3),
        "rows_per_s": round(outcome.rows / seconds) if seconds > 0 else None,
    }
    with transaction.atomic(durable=True):
        EodStep.objects.filter(pk=step.pk).update(
            status=EodStep.Status.DONE,
            finished_at=clock(),
            rows_done=outcome.rows,
            rows_total=outcome.rows,
            summary=summary,
        )
        _emit(
            "eod_step_finished",
            calendar_code=run.calendar.code,
            business_date=run.business_date,
            step=step.name,
            rows=outcome.rows,
            summary=summary,
            now=clock(),
        )


def _describe(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    violations = getattr(exc, "extra", {}).get("violations")
    if violations:
        return f"{detail}\n" + "\n".join(f"- {v}" for v in violations)
    return str(detail)


def _finish(run: EodRun, clock: _Clock, *, status: str, error: str = "") -> None:
    with transaction.atomic(durable=True):
        EodRun.objects.filter(pk=run.pk).update(status=status, finished_at=clock(), error=error)
        if status == EodRun.Status.DONE:
            next_date = (
                Calendar.objects.filter(pk=run.calendar_id)
                .values_list("business_date", flat=True)
                .get()
            )
            _emit(
                "eod_finished",
                calendar_code=run.calendar.code,
                business_date=run.business_date,
                next_business_date=next_date,
                now=clock(),
            )
    run.refresh_from_db()


def eod_run(
    *,
    calendar_code: str,
    now: datetime,
    stop_after: str | None = None,
    reporter: Reporter | None = None,
) -> EodRun:
    """Close the calendar's business day: run (or resume) every EOD step in order.

    Never call it inside a transaction: each step and each checkpoint commits on its own.
    ``stop_after`` (tests, drills) ends the call right after that step's checkpoint, leaving
    the run ``running`` as a crash would. ``reporter`` receives a ``ProgressLine`` per batch.
    A blocked or failed step does not raise: the returned run says ``blocked`` or ``failed``
    and its step carries the reason.

    :raises CalendarNotFound: if there is no such calendar
    :raises EodAlreadyRunning: if another EOD run holds the lock
    """
    if stop_after is not None and stop_after not in STEP_ORDER:
        raise ValueError(f"unknown step {stop_after!r}")
    clock = _Clock(now)
    calendar_id = Calendar.objects.filter(code=calendar_code).values_list("pk", flat=True).first()
    if calendar_id is None:
        raise CalendarNotFound(f"no calendar {calendar_code!r}; seed the bank first")
    with connection.cursor() as cursor:
        if not _run_lock(cursor, calendar_id):
            raise EodAlreadyRunning(f"an end of day of calendar {calendar_code} is running")
    try:
        return _run_locked(calendar_code, clock, stop_after, reporter)
    finally:
        with connection.cursor() as cursor:
            _run_unlock(cursor, calendar_id)


def _run_locked(
    calendar_code: str, clock: _Clock, stop_after: str | None, reporter: Reporter | None
) -> EodRun:
    run = _start(calendar_code=calendar_code, clock=clock)
    if run.status == EodRun.Status.DONE:
        return run
    for step in run.steps.order_by("position"):
        if step.status == EodStep.Status.DONE:
            continue
        try:
            _run_step(run, step, clock, reporter)
        except EodBlocked as exc:
            _finish(run, clock, status=EodRun.Status.BLOCKED, error=f"{step.name}: {exc.detail}")
            return run
        except Exception as exc:
            logger.exception("EOD step %s of %s failed", step.name, run.business_date)
            _finish(run, clock, status=EodRun.Status.FAILED, error=f"{step.name}: {_describe(exc)}")
            return run
        if step.name == stop_after:
            run.refresh_from_db()
            return run
    _finish(run, clock, status=EodRun.Status.DONE)
    return run
