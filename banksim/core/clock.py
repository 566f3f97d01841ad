"""The only place the domain's notion of time is read.

Interfaces (views, tasks, commands) call these once and pass ``now`` / ``business_date`` down
as parameters; services never read a clock themselves, so tests can inject any time.
"""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def business_date(*, calendar_code: str = "MAIN") -> date:
    """Return the bank's current business (value) date from its calendar row."""
    from accounts.selectors import calendar_business_date

    return calendar_business_date(code=calendar_code)
