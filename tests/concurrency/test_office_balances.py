"""Office (GL) balances: postings append deltas instead of locking the shared GL rows.

The fee-income row is credited by every transfer with a fee; if postings locked it, such
transfers would run one at a time. These tests hold that row locked in another session and
show postings still go through, that every reader (snapshot, trial balance, statement,
as-of, ``ledger_violations``) sees the exact balance before and after a fold, and that folds
racing with postings neither lose nor double-count a delta.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from banksim.core.money import Money
from ledger import services
from ledger.models import AccountBalance, Entry, OfficeBalanceDelta
from ledger.selectors import (
    balance_as_of,
    balance_snapshot,
    balances_live,
    ledger_violations,
    statement,
    trial_balance,
)
from tests.concurrency.conftest import run_together

pytestmark = pytest.mark.django_db(transaction=True)


def transfer(bank, debit, credit, minor: int):
    return services.movement_execute(
        movement=services.Movement(
            txn_type="transfer",
            debit_account_id=debit.pk,
            credit_account_id=credit.pk,
            amount=Money.from_minor(minor, "USD"),
            channel="api",
        ),
        actor=None,
        business_date=bank.business_date,
        now=timezone.now(),
    )


def row_minor(account) -> int:
    return AccountBalance.objects.get(account_id=account.pk).ledger_minor


class TestPostingsDoNotLockOfficeRows:
    def test_a_transfer_with_a_fee_posts_while_the_fee_income_row_is_locked_elsewhere(
        self, bank, funded_account, open_account, fee_rule
    ):
        fee_rule()  # flat 1.00 to fee income
        payer, payee = funded_account("100.00"), open_account()
        income = bank.office_account("fee_income")
        locked, release = threading.Event(), threading.Event()

        def hold_the_row() -> None:
            try:
                with transaction.atomic():
                    AccountBalance.objects.select_for_update().get(account_id=income.pk)
                    locked.set()
                    release.wait(30)
            finally:
                connection.close()

        holder = threading.Thread(target=hold_the_row)
        holder.start()
        try:
            assert locked.wait(10)
            with connection.cursor() as cursor:
                # Had the posting waited for the fee-income row, this would raise.
                cursor.execute("SET lock_timeout = '2s'")
            try:
                result = transfer(bank, payer, payee, 10_00)
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")
        finally:
            release.set()
            holder.join(30)

        assert result.posted
        fee_entry = Entry.objects.get(journal=result.journal, account_id=income.pk)
        assert (fee_entry.side, fee_entry.amount_minor, fee_entry.balance_after_minor) == (
            "C",
            1_00,
            None,
        )
        assert balance_snapshot(account_id=payer.pk).ledger.to_wire() == "89.00"


class TestReadersSeeUnfoldedDeltas:
    def test_every_reader_agrees_before_and_after_the_fold(
        self, bank, funded_account, open_account, fee_rule
    ):
        fee_rule()
        payer, payee = funded_account("100.00"), open_account()
        income = bank.office_account("fee_income")
        cash = bank.office_account("teller_cash")
        services.office_balances_fold()  # the funding deposit's cash delta
        for _ in range(3):
            transfer(bank, payer, payee, 5_00)

        def readings() -> tuple[str, str, str, str, str]:
            tb = {line.gl_subhead: line.net for line in trial_balance(currency="USD")[0].lines}
            lines = statement(
                account=income, date_from=None, date_to=None, after=None, limit=10
            ).lines
            return (
                balance_snapshot(account_id=income.pk).ledger.to_wire(),
                tb["40100"].to_wire(),
                lines[-1].balance.to_wire(),
                balance_as_of(account=income, on=bank.business_date).to_wire(),
                balance_snapshot(account_id=cash.pk).ledger.to_wire(),
            )

        # Three fees wait as deltas: the row has not moved, every reader adds them.
        assert row_minor(income) == 0
        assert OfficeBalanceDelta.objects.filter(account_id=income.pk).count() == 3
        before = readings()
        assert before == ("3.00", "3.00", "3.00", "3.00", "-100.00")
        assert ledger_violations() == []
        assert [
            line.balance.to_wire()
            for line in statement(
                account=income, date_from=None, date_to=None, after=None, limit=10
            ).lines
        ] == ["1.00", "2.00", "3.00"]

        assert services.office_balances_fold() == 3
        assert row_minor(income) == 3_00
        assert not OfficeBalanceDelta.objects.exists()
        assert readings() == before
        assert ledger_violations() == []
        assert services.office_balances_fold() == 0  # nothing left: a second fold moves nothing

    def test_a_statement_page_of_an_office_account_starts_from_the_sum_before_it(
        self, bank, funded_account, open_account, fee_rule
    ):
        fee_rule()
        payer, payee = funded_account("100.00"), open_account()
        income = bank.office_account("fee_income")
        for _ in range(5):
            transfer(bank, payer, payee, 1_00)
        first = statement(account=income, date_from=None, date_to=None, after=None, limit=2)
        second = statement(
            account=income, date_from=None, date_to=None, after=first.next_after, limit=2
        )
        assert [line.balance.to_wire() for line in second.lines] == ["3.00", "4.00"]
        assert second.closing.to_wire() == "5.00"


class TestFoldRacesPostings:
    def test_folds_running_during_a_storm_of_fee_transfers_lose_and_double_nothing(
        self, bank, funded_account, open_account, fee_rule
    ):
        fee_rule()
        income = bank.office_account("fee_income")
        payers = [funded_account("500.00") for _ in range(4)]
        payee = open_account()
        per_worker = 15

        def work(index: int) -> int:
            if index >= len(payers):  # the last workers fold, over and over
                return sum(services.office_balances_fold() for _ in range(per_worker))
            for _ in range(per_worker):
                transfer(bank, payers[index], payee, 2_00)
            return 0

        outcomes = run_together(work, len(payers) + 2)
        assert [o.error for o in outcomes if o.error] == []
        services.office_balances_fold()

        fees = len(payers) * per_worker
        assert row_minor(income) == fees * 1_00
        assert balance_snapshot(account_id=income.pk).ledger.minor == fees * 1_00
        assert ledger_violations() == []
        net = dict(
            balances_live()
            .values("currency")
            .annotate(net=Sum("ledger_minor"))
            .values_list("currency", "net")
        )
        assert net["USD"] == 0
