"""Accrual arithmetic: daily accruals with carried remainders sum to the exact period total."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from interest.daycount import (
    ACT_365,
    ACT_ACT,
    THIRTY_360,
    UNITS_PER_MINOR,
    accrual_units,
    period_year_units,
    split_units,
)


def exact_interest(balance_minor: int, rate: str, basis: str, start: date, end: date) -> Fraction:
    """Interest in minor units as an exact fraction, day by day from first principles."""
    total = Fraction(0)
    day = start
    while day < end:
        nxt = day + timedelta(days=1)
        if basis == ACT_365:
            year = Fraction(1, 365)
        elif basis == ACT_ACT:
            year = Fraction(1, 366 if nxt.year % 4 == 0 else 365)
        else:
            n_day = 360 * day.year + 30 * day.month + min(day.day, 30)
            n_nxt = 360 * nxt.year + 30 * nxt.month + min(nxt.day, 30)
            year = Fraction(n_nxt - n_day, 360)
        total += balance_minor * Fraction(Decimal(rate)) / 100 * year
        day = nxt
    return total


def post_monthly(
    balance_minor: int, rate: str, basis: str, start: date, days: int
) -> tuple[int, int]:
    """Accrue day by day, capitalise whole units at each month end; return (posted, carried)."""
    units = posted = 0
    day = start
    for _ in range(days):
        nxt = day + timedelta(days=1)
        units += accrual_units(
            balance_minor=balance_minor, rate_percent=Decimal(rate), basis=basis, start=day, end=nxt
        )
        if (nxt + timedelta(days=1)).day == 1:
            whole, units = split_units(units)
            posted += whole
        day = nxt
    return posted, units


class TestYearFractions:
    def test_a_whole_year_is_one_year_in_every_basis(self) -> None:
        for basis in (THIRTY_360, ACT_365):
            assert period_year_units(basis, date(2025, 3, 31), date(2026, 3, 31)) == (
                period_year_units(basis, date(2025, 1, 1), date(2025, 1, 1)) + 1_603_080
            )

    def test_act_act_weighs_each_day_by_its_own_year(self) -> None:
        units = period_year_units(ACT_ACT, date(2027, 12, 30), date(2028, 1, 2))

        assert units == 1_603_080 // 365 + 2 * (1_603_080 // 366)

    def test_30e_360_gives_the_31st_nothing_and_february_its_real_days(self) -> None:
        assert period_year_units(THIRTY_360, date(2026, 1, 30), date(2026, 1, 31)) == 0
        assert period_year_units(THIRTY_360, date(2026, 1, 31), date(2026, 2, 28)) == (
            28 * 1_603_080 // 360
        )

    def test_a_period_ending_before_it_starts_is_refused(self) -> None:
        with pytest.raises(ValueError):
            period_year_units(ACT_365, date(2026, 2, 2), date(2026, 2, 1))


@pytest.mark.parametrize("basis", [THIRTY_360, ACT_365, ACT_ACT])
@pytest.mark.parametrize(
    ("exponent", "balance_minor", "rate"),
    [
        (0, 1_234_567, "0.0150"),  # JPY: 1,234,567 yen at 0.015 %
        (2, 1_000_001, "3.6500"),  # USD: 10,000.01 at 3.65 %
        (3, 7_777_777, "4.1234"),  # KWD: 7,777.777 at 4.1234 %
    ],
)
class TestDailyAccrualWithCarriedRemainders:
    def test_daily_units_sum_to_the_exact_total_over_a_leap_year_boundary(
        self, basis: str, exponent: int, balance_minor: int, rate: str
    ) -> None:
        start, days = date(2027, 11, 15), 500

        units = sum(
            accrual_units(
                balance_minor=balance_minor,
                rate_percent=Decimal(rate),
                basis=basis,
                start=start + timedelta(days=i),
                end=start + timedelta(days=i + 1),
            )
            for i in range(days)
        )

        exact = exact_interest(balance_minor, rate, basis, start, start + timedelta(days=days))
        assert Fraction(units, UNITS_PER_MINOR) == exact

    def test_monthly_postings_plus_the_carry_equal_the_exact_total(
        self, basis: str, exponent: int, balance_minor: int, rate: str
    ) -> None:
        start, end = date(2027, 11, 30), date(2029, 1, 31)  # month end to month end

        posted, carried = post_monthly(balance_minor, rate, basis, start, (end - start).days)

        exact = exact_interest(balance_minor, rate, basis, start, end)
        assert posted + Fraction(carried, UNITS_PER_MINOR) == exact
        assert 0 <= carried < UNITS_PER_MINOR
        assert posted == exact.numerator // exact.denominator


class TestSplitUnits:
    def test_posts_whole_minor_units_and_carries_the_fraction(self) -> None:
        whole, carried = split_units(3 * UNITS_PER_MINOR + 17)

        assert (whole, carried) == (3, 17)

    def test_less_than_one_minor_unit_posts_nothing(self) -> None:
        assert split_units(UNITS_PER_MINOR - 1) == (0, UNITS_PER_MINOR - 1)
