"""The day simulator end to end, small: 20 customers, 3 business days."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command


def _numbers(output: str) -> list[str]:
    """The per-day lines without the EOD timing column (the only wall-clock figure)."""
    lines = [line for line in output.splitlines() if re.match(r"\d{4}-\d{2}-\d{2} ", line)]
    return [re.sub(r" \d+\.\d\ds ", " <t> ", line) for line in lines]


@pytest.mark.django_db(transaction=True)
class TestSimulate:
    def test_the_same_seed_prints_the_same_days_and_every_check_passes(self) -> None:
        first, second = io.StringIO(), io.StringIO()
        call_command("simulate", customers=20, days=3, seed=11, stdout=first)
        # A fresh bank for the second run, as the first had.
        call_command("flush", interactive=False, verbosity=0)

        call_command("simulate", customers=20, days=3, seed=11, stdout=second)

        days = _numbers(first.getvalue())
        assert len(days) == 3
        assert all(int(line.split()[1]) > 0 for line in days)  # postings every day
        assert _numbers(first.getvalue()) == _numbers(second.getvalue())
        assert "all integrity checks passed" in second.getvalue()
