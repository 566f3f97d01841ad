"""Reads of EOD runs, their steps' progress and their reports."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from banksim.core.errors import NotFound
from eod.models import EodReport, EodRun


class EodRunNotFound(NotFound):
    code = "eod.run_not_found"
    title = "No EOD run for this business date"


def eod_run_get(*, business_date: date, calendar_code: str = "MAIN") -> EodRun:
    """Return the run of ``business_date`` with its steps and report kinds prefetched.

    :raises EodRunNotFound: if no EOD has started for that date
    """
    run = (
        EodRun.objects.select_related("calendar")
        .prefetch_related("steps")
        .filter(calendar__code=calendar_code, business_date=business_date)
        .first()
    )
    if run is None:
        raise EodRunNotFound(f"no EOD run for {business_date.isoformat()}")
    return run


def eod_report_kinds(*, run: EodRun) -> list[str]:
    return list(EodReport.objects.filter(run=run).values_list("kind", flat=True))


def eod_runs() -> QuerySet[EodRun]:
    return EodRun.objects.select_related("calendar").order_by("-business_date")
