from datetime import date

import pytest

from instructions.schedule import next_occurrence


class TestNextOccurrence:
    def test_monthly_clamps_to_month_end_and_returns_to_the_anchor_day(self) -> None:
        dates = [date(2027, 1, 31)]

        for _ in range(4):
            dates.append(next_occurrence(frequency="monthly", current=dates[-1], anchor_day=31))

        assert dates == [
            date(2027, 1, 31),
            date(2027, 2, 28),
            date(2027, 3, 31),
            date(2027, 4, 30),
            date(2027, 5, 31),
        ]

    def test_monthly_lands_on_february_29_in_a_leap_year(self) -> None:
        assert next_occurrence(
            frequency="monthly", current=date(2028, 1, 31), anchor_day=31
        ) == date(2028, 2, 29)

    def test_monthly_crosses_the_year_end(self) -> None:
        assert next_occurrence(
            frequency="monthly", current=date(2026, 12, 15), anchor_day=15
        ) == date(2027, 1, 15)

    @pytest.mark.parametrize(
        ("frequency", "expected"), [("daily", date(2026, 12, 1)), ("weekly", date(2026, 12, 7))]
    )
    def test_daily_and_weekly_add_calendar_days(self, frequency: str, expected: date) -> None:
        assert (
            next_occurrence(frequency=frequency, current=date(2026, 11, 30), anchor_day=30)
            == expected
        )
