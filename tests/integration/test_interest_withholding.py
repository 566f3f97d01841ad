"""Withholding tax on credit interest, where the product's terms say so, at capitalisation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Account
from eod.steps import StepContext
from interest.steps import accrue_and_capitalise
from ledger.models import AccountBalance, Entry
from ledger.selectors import ledger_violations
from tests.factories import ProductTermsFactory

MONTH_END = dt.date(2026, 11, 30)  # the bank fixture's business date


def balance_minor(account: Account) -> int:
    return AccountBalance.objects.get(account=account).ledger_minor


def run_step() -> dict[str, object]:
    ctx = StepContext(
        business_date=MONTH_END,
        calendar_code="MAIN",
        now=timezone.now(),
        progress=lambda done, total: None,
    )
    return accrue_and_capitalise(ctx).summary


def commit_checks() -> None:
    """Fire the deferred balanced-journal triggers now, as a commit would."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def savings_terms(bank: object, withholding: str) -> None:
    """Savings pay 3.65 % ACT/365 (1000.00 earns 0.10 a day), withholding ``withholding`` %."""
    ProductTermsFactory(
        product=bank.products["SBA-USD"],  # type: ignore[attr-defined]
        effective_from=dt.date(2026, 1, 1),
        credit_interest_rate=Decimal("3.6500"),
        accrual_basis="ACT/365",
        withholding_tax_rate=Decimal(withholding),
    )


@pytest.mark.django_db
class TestWithholdingTax:
    def test_a_ten_percent_product_pays_the_customer_net_and_tax_payable_the_tax(
        self, bank: object, funded_account: Callable[..., Account]
    ) -> None:
        savings_terms(bank, "10")
        saver = funded_account("1000.00")  # 10 minor of interest, 1 of tax
        expense = bank.office_account("interest_expense", "USD")  # type: ignore[attr-defined]
        tax_payable = bank.office_account("tax_payable", "USD")  # type: ignore[attr-defined]
        expense_before, tax_before = balance_minor(expense), balance_minor(tax_payable)

        run_step()

        commit_checks()
        assert balance_minor(saver) == 100_000 + 10 - 1
        assert balance_minor(expense) == expense_before - 10
        assert balance_minor(tax_payable) == tax_before + 1
        legs = sorted(
            Entry.objects.filter(account=saver).values_list("purpose", "side", "amount_minor")
        )
        assert legs == [
            ("interest", "C", 10),
            ("principal", "C", 100_000),
            ("withholding_tax", "D", 1),
        ]
        assert ledger_violations() == []

    def test_each_accounts_tax_is_rounded_half_to_even(
        self, bank: object, funded_account: Callable[..., Account]
    ) -> None:
        savings_terms(bank, "10")
        down = funded_account("2500.00")  # 25 minor of interest: 2.5 of tax rounds to 2
        up = funded_account("1500.00")  # 15 minor of interest: 1.5 of tax rounds to 2

        run_step()

        commit_checks()
        assert balance_minor(down) == 250_000 + 25 - 2
        assert balance_minor(up) == 150_000 + 15 - 2
        assert ledger_violations() == []

    def test_tax_is_never_more_than_the_interest(
        self, bank: object, funded_account: Callable[..., Account]
    ) -> None:
        savings_terms(bank, "150")
        saver = funded_account("1000.00")

        run_step()

        commit_checks()
        assert balance_minor(saver) == 100_000
        assert ledger_violations() == []

    def test_a_product_without_withholding_pays_the_gross_interest(
        self, bank: object, funded_account: Callable[..., Account]
    ) -> None:
        savings_terms(bank, "0")
        saver = funded_account("1000.00")

        run_step()

        commit_checks()
        assert balance_minor(saver) == 100_010
        assert not Entry.objects.filter(account=saver, purpose="withholding_tax").exists()
        assert ledger_violations() == []

    def test_a_negative_rate_is_refused_by_the_database(self, bank: object) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            savings_terms(bank, "-1")
