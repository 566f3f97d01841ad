"""Reads of CIF, branches, products and accounts."""

from __future__ import annotations

from datetime import date

from accounts.models import Calendar
from banksim.core.errors import NotFound


class CalendarNotFound(NotFound):
    code = "calendar.not_found"
    title = "Calendar not found"


def calendar_business_date(*, code: str = "MAIN") -> date:
    """Return the current business date of calendar ``code``.

    :raises CalendarNotFound: if the bank has no such calendar
    """
    value = Calendar.objects.filter(code=code).values_list("business_date", flat=True).first()
    if value is None:
        raise CalendarNotFound(f"no calendar {code!r}; seed the bank first")
    return value
