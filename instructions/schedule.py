"""Date arithmetic of standing-instruction schedules (pure, no database).

The monthly rule: an instruction keeps the day of month it started on (its *anchor day*).
Each occurrence falls on that day of the following month, clamped to the month's last day
when the month is shorter, and returns to the anchor as soon as a month is long enough:
anchor 31 gives Jan 31 -> Feb 28 (Feb 29 in a leap year) -> Mar 31 -> Apr 30 -> May 31.
Daily adds one calendar day, weekly seven. Occurrences are not moved off weekends or
holidays: one that falls on a non-business day is simply due at the next EOD that runs.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def next_occurrence(*, frequency: str, current: date, anchor_day: int) -> date:
    """Return the occurrence after ``current`` for ``frequency`` (daily, weekly, monthly)."""
    if frequency == "daily":
        return current + timedelta(days=1)
    if frequency == "weekly":
        return current + timedelta(days=7)
    if frequency == "monthly":
        year, month = (
            (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
        )
        last = calendar.monthrange(year, month)[1]
        return date(year, month, min(anchor_day, last))
    raise ValueError(f"unknown frequency {frequency!r}")
