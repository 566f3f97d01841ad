"""Day-count arithmetic in exact integers: no interest is ever rounded away.

Design overview: an accrual is ``balance x annual rate x year fraction``. The year fraction of
every supported basis is a whole number of days over 360, 365 or 366, and rates are percents
with four decimals, so everything becomes an integer once it is scaled by
``RATE_SCALE`` (percent with 4 dp -> fraction, 10**6) and ``YEAR_UNITS`` (the least common
multiple of 360, 365 and 366). Accrued interest is kept in *units* of
``1 / UNITS_PER_MINOR`` of a minor unit: integer addition, exact for any number of days.
Capitalisation posts ``units // UNITS_PER_MINOR`` whole minor units and carries the rest.

Bases (``ProductTerms.AccrualBasis``):

* ``30/360`` is 30E/360 (Eurobond): a date's day number is ``360*y + 30*m + min(d, 30)`` and a
  period counts the difference. Being a difference, daily accrual sums exactly to the period
  at once; the 31st accrues nothing, February accrues 28 (29) days, every year 360.
* ``ACT/365`` (fixed): every calendar day is 1/365 of a year, leap years included.
* ``ACT/ACT`` (ISDA): each calendar day is 1/365 or 1/366 of a year by its own year.

Periods are ``(start, end]``: the days after ``start`` up to and including ``end``.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

THIRTY_360 = "30/360"
ACT_365 = "ACT/365"
ACT_ACT = "ACT/ACT"
BASES = (THIRTY_360, ACT_365, ACT_ACT)

YEAR_UNITS = 1_603_080  # lcm(360, 365, 366)
RATE_SCALE = 10**6  # a rate of 3.5000 % is 35_000 / RATE_SCALE of the balance a year
UNITS_PER_MINOR = RATE_SCALE * YEAR_UNITS


def _day_number_30e(d: date) -> int:
    return 360 * d.year + 30 * d.month + min(d.day, 30)


def period_year_units(basis: str, start: date, end: date) -> int:
    """Return the year fraction of ``(start, end]`` in units of ``1 / YEAR_UNITS`` of a year.

    :raises ValueError: for an unknown basis or ``end`` before ``start``
    """
    if end < start:
        raise ValueError(f"period ends {end} before it starts {start}")
    if basis == THIRTY_360:
        return (_day_number_30e(end) - _day_number_30e(start)) * (YEAR_UNITS // 360)
    if basis == ACT_365:
        return (end - start).days * (YEAR_UNITS // 365)
    if basis == ACT_ACT:
        units = 0
        cursor = start
        while cursor < end:
            # The days of (cursor, stop] all fall in the year of the day after cursor.
            year = (cursor + timedelta(days=1)).year
            stop = min(end, date(year, 12, 31))
            days_in_year = 366 if calendar.isleap(year) else 365
            units += (stop - cursor).days * (YEAR_UNITS // days_in_year)
            cursor = stop
        return units
    raise ValueError(f"unknown accrual basis {basis!r}")


def rate_scaled(rate_percent: object) -> int:
    """Return an annual percent rate (``Decimal`` with at most 4 places) as an integer.

    :raises ValueError: if the rate has more than 4 decimal places
    """
    from decimal import Decimal

    scaled = Decimal(str(rate_percent)) * 10_000
    if scaled != scaled.to_integral_value():
        raise ValueError(f"rate {rate_percent} has more than 4 decimal places")
    return int(scaled)


def accrual_units(
    *, balance_minor: int, rate_percent: object, basis: str, start: date, end: date
) -> int:
    """Return the interest on ``balance_minor`` over ``(start, end]`` in accrual units."""
    return abs(balance_minor) * rate_scaled(rate_percent) * period_year_units(basis, start, end)


def split_units(units: int) -> tuple[int, int]:
    """Return (whole minor units to post, units carried), truncating toward zero."""
    whole = units // UNITS_PER_MINOR
    return whole, units - whole * UNITS_PER_MINOR
