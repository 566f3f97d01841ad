"""The posting engine against real PostgreSQL: rules, reversals, holds and maker-checker."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import services as account_services
from banksim.core.money import Money
from ledger import services
from ledger.errors import (
    AccountClosed,
    AccountDormant,
    AccountFrozen,
    AlreadyReversed,
    InsufficientFunds,
    JournalNotPending,
    LedgerCurrencyMismatch,
    NotAnOfficeAccount,
    SameAccount,
    SelfApproval,
)
from ledger.models import AccountBalance, ApprovalThreshold, Entry, Hold, Journal
from ledger.selectors import balance_snapshot, ledger_violations


def balance(account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


def available(account) -> str:
    return balance_snapshot(account_id=account.pk).available.to_wire()


@pytest.mark.django_db
class TestMovementPost:
    def test_cash_deposit_credits_the_customer_and_debits_teller_cash(
        self, bank, open_account, post_movement
    ):
        saver = open_account("SBA-USD")
        cash = bank.office_account("teller_cash")

        result = post_movement("cash_deposit", cash, saver, "250.75")

        assert result.posted
        assert balance(saver) == "250.75"
        assert balance(cash) == "-250.75"
        entries = list(Entry.objects.filter(journal=result.journal).order_by("id"))
        # Teller cash is an office account: no running balance on its entry (its row is not
        # locked by postings), the customer's entry has one.
        assert [(e.side, e.amount_minor, e.balance_after_minor) for e in entries] == [
            ("D", 25075, None),
            ("C", 25075, 25075),
        ]
        assert result.journal.txn_id.startswith("T")
        assert ledger_violations() == []

    def test_transfer_moves_money_between_customers(
        self, funded_account, open_account, post_movement
    ):
        payer = funded_account("100.00")
        payee = open_account("CAA-USD")

        post_movement("transfer", payer, payee, "40.10")

        assert balance(payer) == "59.90"
        assert balance(payee) == "40.10"

    def test_a_debit_beyond_available_balance_is_refused_and_posts_nothing(
        self, funded_account, open_account, post_movement
    ):
        payer = funded_account("10.00")
        payee = open_account()
        journals_before = Journal.objects.count()

        with pytest.raises(InsufficientFunds) as exc:
            post_movement("transfer", payer, payee, "10.01")

        assert exc.value.extra["available_minor"] == 1000
        assert balance(payer) == "10.00"
        assert Journal.objects.count() == journals_before

    def test_overdraft_allows_a_current_account_to_go_negative_up_to_its_limit(
        self, bank, open_account, post_movement
    ):
        current = open_account("CAA-USD")
        cash = bank.office_account("teller_cash")

        post_movement("cash_withdrawal", current, cash, "50000.00")

        assert balance(current) == "-50000.00"
        with pytest.raises(InsufficientFunds):
            post_movement("cash_withdrawal", current, cash, "0.01")

    def test_minimum_balance_is_kept(self, bank, open_account, post_movement):
        product = bank.products["SBA-USD"]
        product.terms.update(min_balance_minor=500)
        saver = open_account("SBA-USD")
        cash = bank.office_account("teller_cash")
        post_movement("cash_deposit", cash, saver, "20.00")

        with pytest.raises(InsufficientFunds):
            post_movement("cash_withdrawal", saver, cash, "15.01")
        post_movement("cash_withdrawal", saver, cash, "15.00")

        assert balance(saver) == "5.00"

    def test_same_debit_and_credit_account_is_refused(self, funded_account, post_movement):
        payer = funded_account("10.00")

        with pytest.raises(SameAccount):
            post_movement("transfer", payer, payer, "1.00")

    def test_currency_differing_from_the_account_is_refused(
        self, bank, funded_account, open_account
    ):
        payer = funded_account("10.00")
        payee = open_account()
        movement = services.Movement(
            txn_type="transfer",
            debit_account_id=payer.pk,
            credit_account_id=payee.pk,
            amount=Money.parse("1.000", "KWD"),
            channel="teller",
        )

        with pytest.raises(LedgerCurrencyMismatch):
            services.movement_execute(
                movement=movement, actor=None, business_date=bank.business_date, now=timezone.now()
            )

    def test_a_debit_frozen_account_refuses_debits_but_takes_credits(
        self, bank, funded_account, supervisor, post_movement
    ):
        frozen = funded_account("10.00")
        cash = bank.office_account("teller_cash")
        account_services.account_freeze(
            account_id=frozen.pk,
            freeze_type="debit",
            reason="court order",
            actor=supervisor,
            now=timezone.now(),
        )

        with pytest.raises(AccountFrozen):
            post_movement("cash_withdrawal", frozen, cash, "1.00")
        post_movement("cash_deposit", cash, frozen, "1.00")

        assert balance(frozen) == "11.00"

    def test_a_total_freeze_refuses_credits_too(
        self, bank, funded_account, supervisor, post_movement
    ):
        frozen = funded_account("10.00")
        cash = bank.office_account("teller_cash")
        account_services.account_freeze(
            account_id=frozen.pk,
            freeze_type="total",
            reason="fraud",
            actor=supervisor,
            now=timezone.now(),
        )

        with pytest.raises(AccountFrozen):
            post_movement("cash_deposit", cash, frozen, "1.00")

    def test_dormant_accounts_refuse_debits(self, bank, funded_account, post_movement):
        dormant = funded_account("10.00")
        type(dormant).objects.filter(pk=dormant.pk).update(status="dormant")
        cash = bank.office_account("teller_cash")

        with pytest.raises(AccountDormant):
            post_movement("cash_withdrawal", dormant, cash, "1.00")

    def test_closed_accounts_refuse_everything(self, bank, open_account, supervisor, post_movement):
        closed = open_account()
        account_services.account_close(
            account_id=closed.pk,
            reason="customer request",
            actor=supervisor,
            business_date=bank.business_date,
            now=timezone.now(),
        )
        cash = bank.office_account("teller_cash")

        with pytest.raises(AccountClosed):
            post_movement("cash_deposit", cash, closed, "1.00")

    def test_adjustments_only_touch_office_accounts(self, bank, funded_account, post_movement):
        customer = funded_account("10.00")
        suspense = bank.office_account("suspense")
        fee_income = bank.office_account("fee_income")

        post_movement("adjustment", suspense, fee_income, "3.00")
        with pytest.raises(NotAnOfficeAccount):
            post_movement("adjustment", customer, fee_income, "1.00")

        assert balance(fee_income) == "3.00"

    def test_jpy_and_kwd_amounts_post_in_their_own_minor_units(
        self, bank, open_account, post_movement
    ):
        yen = open_account("SBA-JPY")
        dinar = open_account("SBA-KWD")

        post_movement("cash_deposit", bank.office_account("teller_cash", "JPY"), yen, "1500")
        post_movement("cash_deposit", bank.office_account("teller_cash", "KWD"), dinar, "1.234")

        assert AccountBalance.objects.get(account=yen).ledger_minor == 1500
        assert AccountBalance.objects.get(account=dinar).ledger_minor == 1234
        assert balance(dinar) == "1.234"


@pytest.mark.django_db
class TestJournalReverse:
    def test_reversal_restores_both_balances_and_links_the_original(
        self, bank, funded_account, open_account, post_movement, supervisor
    ):
        payer = funded_account("100.00")
        payee = open_account()
        original = post_movement("transfer", payer, payee, "30.00").journal

        reversal = services.journal_reverse(
            journal_id=original.pk,
            reason="keyed twice",
            actor=supervisor,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )

        assert reversal.reversal_of_id == original.pk
        assert balance(payer) == "100.00"
        assert balance(payee) == "0.00"
        assert ledger_violations() == []

    def test_reversing_twice_is_refused(
        self, bank, funded_account, open_account, post_movement, supervisor
    ):
        payer = funded_account("100.00")
        original = post_movement("transfer", payer, open_account(), "30.00").journal
        kwargs = dict(
            journal_id=original.pk,
            reason="dup",
            actor=supervisor,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )
        services.journal_reverse(**kwargs)

        with pytest.raises(AlreadyReversed):
            services.journal_reverse(**kwargs)

        assert balance(payer) == "100.00"

    def test_reversal_cannot_overdraw_a_payee_who_spent_the_money(
        self, bank, funded_account, open_account, post_movement, supervisor
    ):
        payer = funded_account("100.00")
        payee = open_account()
        original = post_movement("transfer", payer, payee, "30.00").journal
        post_movement("cash_withdrawal", payee, bank.office_account("teller_cash"), "30.00")

        with pytest.raises(InsufficientFunds):
            services.journal_reverse(
                journal_id=original.pk,
                reason="late",
                actor=supervisor,
                channel="teller",
                business_date=bank.business_date,
                now=timezone.now(),
            )


@pytest.mark.django_db
class TestHolds:
    def test_a_hold_reduces_available_but_not_ledger_balance(self, bank, funded_account, teller):
        saver = funded_account("100.00")

        hold = services.hold_place(
            account_id=saver.pk,
            amount=Money.parse("60.00", "USD"),
            reason="card authorisation",
            expires_on=None,
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        assert balance(saver) == "100.00"
        assert available(saver) == "40.00"
        services.hold_release(hold_id=hold.pk, actor=teller, now=timezone.now())
        assert available(saver) == "100.00"

    def test_held_funds_cannot_be_withdrawn(self, bank, funded_account, teller, post_movement):
        saver = funded_account("100.00")
        services.hold_place(
            account_id=saver.pk,
            amount=Money.parse("60.00", "USD"),
            reason="lien",
            expires_on=None,
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        with pytest.raises(InsufficientFunds):
            post_movement("cash_withdrawal", saver, bank.office_account("teller_cash"), "40.01")


@pytest.mark.django_db
class TestMakerChecker:
    @pytest.fixture
    def threshold(self, bank):
        return ApprovalThreshold.objects.create(currency="USD", channel="api", amount_minor=100_000)

    def test_above_threshold_a_movement_is_entered_and_its_funds_held(
        self, threshold, funded_account, open_account, post_movement, teller
    ):
        payer = funded_account("5000.00")
        payee = open_account()

        result = post_movement("transfer", payer, payee, "1500.00", actor=teller, channel="api")

        assert not result.posted
        assert result.journal.status == Journal.Status.ENTERED
        assert balance(payer) == "5000.00"
        assert available(payer) == "3500.00"
        assert not Entry.objects.filter(journal=result.journal).exists()

    def test_the_same_amount_on_another_channel_posts_directly(
        self, threshold, funded_account, open_account, post_movement, teller
    ):
        payer = funded_account("5000.00")

        result = post_movement("transfer", payer, open_account(), "1500.00", actor=teller)

        assert result.posted

    def test_a_supervisor_approval_posts_once_and_consumes_the_hold(
        self, bank, threshold, funded_account, open_account, post_movement, teller, supervisor
    ):
        payer = funded_account("5000.00")
        payee = open_account()
        entered = post_movement(
            "transfer", payer, payee, "1500.00", actor=teller, channel="api"
        ).journal

        approved = services.journal_approve(
            journal_id=entered.pk,
            actor=supervisor,
            business_date=bank.business_date,
            now=timezone.now(),
        )
        with pytest.raises(JournalNotPending):
            services.journal_approve(
                journal_id=entered.pk,
                actor=supervisor,
                business_date=bank.business_date,
                now=timezone.now(),
            )

        assert approved.status == Journal.Status.POSTED
        assert approved.checker_id == supervisor.pk
        assert balance(payer) == "3500.00"
        assert available(payer) == "3500.00"
        assert balance(payee) == "1500.00"
        assert Hold.objects.get(journal=entered).status == Hold.Status.CONSUMED
        assert ledger_violations() == []

    def test_the_maker_cannot_approve_their_own_movement(
        self, bank, threshold, funded_account, open_account, post_movement, supervisor
    ):
        payer = funded_account("5000.00")
        entered = post_movement(
            "transfer", payer, open_account(), "1500.00", actor=supervisor, channel="api"
        ).journal

        with pytest.raises(SelfApproval):
            services.journal_approve(
                journal_id=entered.pk,
                actor=supervisor,
                business_date=bank.business_date,
                now=timezone.now(),
            )

    def test_rejection_releases_the_held_funds(
        self, threshold, funded_account, open_account, post_movement, teller, supervisor
    ):
        payer = funded_account("5000.00")
        entered = post_movement(
            "transfer", payer, open_account(), "1500.00", actor=teller, channel="api"
        ).journal

        rejected = services.journal_reject(
            journal_id=entered.pk, reason="no docs", actor=supervisor, now=timezone.now()
        )

        assert rejected.status == Journal.Status.REJECTED
        assert available(payer) == "5000.00"
        assert ledger_violations() == []


@pytest.mark.django_db
class TestLedgerVerifyCommand:
    def test_passes_on_a_sound_ledger(self, funded_account, capsys):
        funded_account("10.00")

        call_command("ledger_verify")

        assert "OK" in capsys.readouterr().out
