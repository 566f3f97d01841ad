"""Periodic fees step: monthly maintenance and below-minimum-balance fees, once per date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from eod.steps import StepContext
from interest.steps import periodic_fees
from ledger.models import AccountBalance, Entry
from ledger.selectors import ledger_violations

MONTH_END = dt.date(2026, 11, 30)


def run_step(on: dt.date = MONTH_END) -> dict[str, object]:
    ctx = StepContext(
        business_date=on, calendar_code="MAIN", now=timezone.now(), progress=lambda d, t: None
    )
    return periodic_fees(ctx).summary


def balance_minor(account: Account) -> int:
    return AccountBalance.objects.get(account=account).ledger_minor


@pytest.mark.django_db
class TestPeriodicFees:
    def test_monthly_maintenance_is_charged_once_with_its_tax(
        self, bank: object, fee_rule: Callable[..., object], funded_account: Callable[..., Account]
    ) -> None:
        customer = funded_account("100.00")
        fee_rule(event="monthly_maintenance", flat_fee="2.00", tax_rate_percent="10")
        income = bank.office_account("fee_income", "USD")  # type: ignore[attr-defined]
        income_before = balance_minor(income)

        run_step()
        again = run_step()

        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        assert balance_minor(customer) == 10_000 - 200 - 20
        assert balance_minor(income) == income_before + 200
        purposes = sorted(Entry.objects.filter(account=customer).values_list("purpose", flat=True))
        assert purposes == ["fee", "fee_tax", "principal"]
        assert again["charged_accounts"] == 0
        assert ledger_violations() == []

    def test_below_minimum_fee_only_hits_accounts_under_their_minimum(
        self, fee_rule: Callable[..., object], funded_account: Callable[..., Account]
    ) -> None:
        rich = funded_account("500.00")
        poor = funded_account("50.00")
        AccountBalance.objects.filter(account__in=[rich, poor]).update(min_balance_minor=10_000)
        fee_rule(event="below_min_balance", flat_fee="5.00")

        run_step()

        assert balance_minor(rich) == 50_000
        assert balance_minor(poor) == 5_000 - 500

    def test_a_waived_account_is_not_charged(
        self, fee_rule: Callable[..., object], funded_account: Callable[..., Account]
    ) -> None:
        from fees.models import FeeWaiver

        waived = funded_account("100.00")
        FeeWaiver.objects.create(
            account=waived,
            event="monthly_maintenance",
            reason="staff",
            valid_from=dt.date(2026, 1, 1),
            expires_on=dt.date(2027, 1, 1),
            created_at=timezone.now(),
        )
        fee_rule(event="monthly_maintenance", flat_fee="2.00")

        run_step()

        assert balance_minor(waived) == 10_000

    def test_nothing_is_charged_before_the_last_business_day(
        self, fee_rule: Callable[..., object], funded_account: Callable[..., Account]
    ) -> None:
        customer = funded_account("100.00")
        fee_rule(event="monthly_maintenance", flat_fee="2.00", effective_from=dt.date(2026, 1, 1))

        summary = run_step(dt.date(2026, 11, 27))

        assert summary["month_end"] is False
        assert balance_minor(customer) == 10_000
