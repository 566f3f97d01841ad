"""Interest EOD step: daily accrual, month-end capitalisation, overdraft interest, re-runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from eod.steps import StepContext
from interest.daycount import UNITS_PER_MINOR
from interest.selectors import AccrualWindow, accrual_window, accrued_interest
from interest.services import accrual_rows_open, interest_accrue
from interest.steps import accrue_and_capitalise
from ledger.models import AccountBalance, Entry
from ledger.selectors import ledger_violations
from tests.factories import ProductTermsFactory

MONTH_END = dt.date(2026, 11, 30)  # the bank fixture's business date, a Monday


def balance_minor(account: Account) -> int:
    return AccountBalance.objects.get(account=account).ledger_minor


def run_step(on: dt.date = MONTH_END) -> dict[str, object]:
    ctx = StepContext(
        business_date=on, calendar_code="MAIN", now=timezone.now(), progress=lambda d, t: None
    )
    return accrue_and_capitalise(ctx).summary


def commit_checks() -> None:
    """Fire the deferred balanced-journal triggers now, as a commit would."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def rates(bank: object) -> None:
    """Savings pay 3.65 % ACT/365; current accounts charge 18.25 % ACT/365 on overdrafts."""
    products = bank.products  # type: ignore[attr-defined]
    ProductTermsFactory(
        product=products["SBA-USD"],
        effective_from=dt.date(2026, 1, 1),
        credit_interest_rate=Decimal("3.6500"),
        accrual_basis="ACT/365",
    )
    ProductTermsFactory(
        product=products["CAA-USD"],
        effective_from=dt.date(2026, 1, 1),
        overdraft_allowed=True,
        overdraft_limit_minor=5_000_000,
        debit_interest_rate=Decimal("18.2500"),
        accrual_basis="ACT/365",
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("rates")
class TestAccrualWindow:
    def test_the_last_business_day_of_a_month_accrues_to_its_end_and_capitalises(self) -> None:
        window = accrual_window(calendar_code="MAIN", business_date=MONTH_END)

        assert window.accrue_to == MONTH_END
        assert window.month_end is True

    def test_a_friday_accrues_the_weekend_at_its_closing_balance(self) -> None:
        window = accrual_window(calendar_code="MAIN", business_date=dt.date(2026, 12, 4))

        assert window.accrue_to == dt.date(2026, 12, 6)
        assert window.month_end is False


@pytest.mark.django_db
@pytest.mark.usefixtures("rates")
class TestDailyAccrual:
    def test_opening_accrual_rows_leaves_the_planner_settings_of_the_transaction_alone(
        self, funded_account: Callable[..., Account]
    ) -> None:
        # EOD opens the rows inside its step's transaction; a leaked enable_nestloop = off
        # made every later bulk posting of that transaction cost 10^10 and JIT-compile.
        funded_account("10.00")
        with transaction.atomic(), connection.cursor() as cursor:
            assert accrual_rows_open() == 1
            cursor.execute("SHOW enable_nestloop")
            assert cursor.fetchone()[0] == "on"

    def test_each_account_accrues_its_own_balance_at_its_products_rate(
        self, funded_account: Callable[..., Account]
    ) -> None:
        saver = funded_account("1000.00")
        bigger_saver = funded_account("2000.00")
        window = AccrualWindow(
            business_date=MONTH_END, accrue_to=dt.date(2026, 12, 9), month_end=False
        )

        interest_accrue(window=window)

        # 10 days (Nov 30 .. Dec 9) x 1000.00 x 3.65 % / 365 = 1.00 exactly.
        assert accrued_interest(account=saver).credit_units == 100 * UNITS_PER_MINOR
        assert accrued_interest(account=bigger_saver).credit_units == 200 * UNITS_PER_MINOR
        assert accrued_interest(account=saver).accrued_through == dt.date(2026, 12, 9)

    def test_a_second_run_for_the_same_day_accrues_nothing_more(
        self, funded_account: Callable[..., Account]
    ) -> None:
        saver = funded_account("1000.01")
        window = AccrualWindow(business_date=MONTH_END, accrue_to=MONTH_END, month_end=False)
        interest_accrue(window=window)

        again = interest_accrue(window=window)

        assert again.rows == 0
        # 100001 x 3.65 % / 365 = 10.0001 minor units, kept to the last fraction.
        assert accrued_interest(account=saver).credit_units == 100_001 * UNITS_PER_MINOR // 10_000


@pytest.mark.django_db
@pytest.mark.usefixtures("rates")
class TestMonthEndCapitalisation:
    def test_posts_whole_minor_units_and_carries_the_fraction(
        self, bank: object, funded_account: Callable[..., Account]
    ) -> None:
        saver = funded_account("1000.01")
        expense = bank.office_account("interest_expense", "USD")  # type: ignore[attr-defined]
        expense_before = balance_minor(expense)

        summary = run_step()

        commit_checks()
        assert balance_minor(saver) == 100_001 + 10
        assert balance_minor(expense) == expense_before - 10
        carried = accrued_interest(account=saver)
        assert carried.credit_units == UNITS_PER_MINOR // 10_000  # the 0.0001 left over
        entry = Entry.objects.get(account=saver, purpose="interest")
        assert (entry.side, entry.amount_minor, entry.balance_after_minor) == ("C", 10, 100_011)
        assert entry.journal.details["eod"]["date"] == MONTH_END.isoformat()
        assert summary["capitalised"] is True
        assert ledger_violations() == []

    def test_overdraft_interest_is_charged_to_the_customer_and_credited_to_income(
        self,
        bank: object,
        open_account: Callable[..., Account],
        post_movement: Callable[..., object],
    ) -> None:
        borrower = open_account("CAA-USD")
        cash = bank.office_account("teller_cash", "USD")  # type: ignore[attr-defined]
        income = bank.office_account("interest_income", "USD")  # type: ignore[attr-defined]
        AccountBalance.objects.filter(account=borrower).update(overdraft_limit_minor=5_000_000)
        post_movement("cash_withdrawal", borrower, cash, "100.00")
        income_before = balance_minor(income)

        run_step()

        commit_checks()
        # 10000 x 18.25 % / 365 = 5 minor units for the day.
        assert balance_minor(borrower) == -10_005
        assert balance_minor(income) == income_before + 5
        assert accrued_interest(account=borrower).debit_units == 0
        assert ledger_violations() == []

    def test_running_the_step_again_posts_nothing_twice(
        self, funded_account: Callable[..., Account]
    ) -> None:
        saver = funded_account("1000.00")
        run_step()

        again = run_step()

        commit_checks()
        assert balance_minor(saver) == 100_010
        assert Entry.objects.filter(account=saver, purpose="interest").count() == 1
        assert again["accrued_accounts"] == 0
        assert again["capitalised_accounts"] == 0
        assert ledger_violations() == []

    def test_overdraft_interest_never_pushes_an_account_past_its_limit(
        self,
        bank: object,
        open_account: Callable[..., Account],
        post_movement: Callable[..., object],
    ) -> None:
        borrower = open_account("CAA-USD")
        cash = bank.office_account("teller_cash", "USD")  # type: ignore[attr-defined]
        AccountBalance.objects.filter(account=borrower).update(overdraft_limit_minor=10_002)
        post_movement("cash_withdrawal", borrower, cash, "100.00")

        run_step()

        commit_checks()
        assert balance_minor(borrower) == -10_002
        # 5 accrued, 2 posted; the other 3 wait for room.
        assert accrued_interest(account=borrower).debit_units == 3 * UNITS_PER_MINOR
