"""Fees and daily limits ride in the movement's own journal and transaction."""

import pytest
from django.utils import timezone

from banksim.core.money import Money
from fees.services import fee_assess
from ledger import services
from ledger.errors import InsufficientFunds
from ledger.models import Entry, Journal
from ledger.selectors import balance_snapshot, ledger_violations
from limits.errors import DailyLimitExceeded
from limits.models import LimitRule
from limits.services import LimitRuleSpec, limit_rule_create


def ledger_balance(account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


@pytest.fixture
def transfer_fee(bank, fee_rule):
    return fee_rule(
        event="transfer_out",
        calc_type="percent",
        rate_percent="1.0",
        min_fee="0.50",
        tax_rate_percent="10",
    )


@pytest.mark.django_db
class TestTransferWithFee:
    def test_posts_one_balanced_journal_with_fee_and_tax_legs(
        self, bank, transfer_fee, funded_account, open_account, post_movement
    ):
        payer = funded_account("100.00")
        payee = open_account()

        journal = post_movement("transfer", payer, payee, "40.00").journal

        legs = sorted(
            Entry.objects.filter(journal_id=journal.pk).values_list(
                "purpose", "side", "amount_minor"
            )
        )
        assert legs == [
            ("fee", "C", 50),
            ("fee", "D", 50),
            ("fee_tax", "C", 5),
            ("fee_tax", "D", 5),
            ("principal", "C", 4000),
            ("principal", "D", 4000),
        ]
        assert ledger_balance(payer) == "59.45"
        assert ledger_balance(bank.office_account("fee_income")) == "0.50"
        assert ledger_balance(bank.office_account("tax_payable")) == "0.05"
        assert Journal.objects.get(pk=journal.pk).details["fees"][0]["rule_id"] == transfer_fee.pk
        assert ledger_violations() == []

    def test_the_quote_equals_what_posts(
        self, bank, transfer_fee, funded_account, open_account, post_movement
    ):
        payer = funded_account("1000.00")
        quote = fee_assess(
            event="transfer_out",
            payer_account_id=payer.pk,
            amount=Money.parse("123.45", "USD"),
            channel="teller",
            business_date=bank.business_date,
            count_usage=False,
        )

        post_movement("transfer", payer, open_account(), "123.45")

        paid = 100000 - 12345 - balance_snapshot(account_id=payer.pk).ledger.minor
        assert paid == quote.fee_total("USD").minor + quote.tax_total("USD").minor
        assert quote.fee_total("USD").to_wire() == "1.23"

    def test_a_payer_who_cannot_afford_amount_plus_fee_is_refused(
        self, transfer_fee, funded_account, open_account, post_movement
    ):
        payer = funded_account("40.00")

        with pytest.raises(InsufficientFunds):
            post_movement("transfer", payer, open_account(), "40.00")

        assert ledger_balance(payer) == "40.00"

    def test_reversal_gives_back_the_fee_and_its_tax(
        self, bank, transfer_fee, funded_account, open_account, post_movement, supervisor
    ):
        payer = funded_account("100.00")
        original = post_movement("transfer", payer, open_account(), "40.00").journal

        services.journal_reverse(
            journal_id=original.pk,
            reason="customer dispute",
            actor=supervisor,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )

        assert ledger_balance(payer) == "100.00"
        assert ledger_balance(bank.office_account("fee_income")) == "0.00"
        assert ledger_balance(bank.office_account("tax_payable")) == "0.00"
        assert ledger_violations() == []


@pytest.mark.django_db
class TestTransferWithDailyLimit:
    @pytest.fixture
    def daily_limit(self, bank):
        return limit_rule_create(
            spec=LimitRuleSpec(currency="USD", max_amount=Money.parse("100.00", "USD")),
            actor=None,
            now=timezone.now(),
        )

    def test_a_debit_past_the_limit_is_refused_with_what_remains(
        self, daily_limit, funded_account, open_account, post_movement
    ):
        payer = funded_account("500.00")
        payee = open_account()
        post_movement("transfer", payer, payee, "70.00")

        with pytest.raises(DailyLimitExceeded) as exc:
            post_movement("transfer", payer, payee, "30.01")

        assert exc.value.extra["remaining_amount"] == "30.00"
        assert ledger_balance(payer) == "430.00"

    def test_a_reversal_restores_the_headroom(
        self, bank, daily_limit, funded_account, open_account, post_movement, supervisor
    ):
        payer = funded_account("500.00")
        payee = open_account()
        spent = post_movement("transfer", payer, payee, "100.00").journal

        services.journal_reverse(
            journal_id=spent.pk,
            reason="error",
            actor=supervisor,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )
        post_movement("transfer", payer, payee, "100.00")

        assert ledger_balance(payer) == "400.00"

    def test_an_approval_rule_enters_the_movement_instead_of_refusing(
        self, bank, funded_account, open_account, post_movement, teller, supervisor
    ):
        limit_rule_create(
            spec=LimitRuleSpec(
                currency="USD",
                max_amount=Money.parse("50.00", "USD"),
                on_breach=LimitRule.OnBreach.REQUIRE_APPROVAL,
            ),
            actor=None,
            now=timezone.now(),
        )
        payer = funded_account("500.00")

        result = post_movement("transfer", payer, open_account(), "80.00", actor=teller)
        approved = services.journal_approve(
            journal_id=result.journal.pk,
            actor=supervisor,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        assert not result.posted
        assert approved.status == Journal.Status.POSTED
        assert ledger_balance(payer) == "420.00"
        assert ledger_violations() == []

    def test_rejecting_a_threshold_entered_item_releases_its_limit_usage(
        self, bank, daily_limit, funded_account, open_account, post_movement, teller, supervisor
    ):
        from ledger.models import ApprovalThreshold

        ApprovalThreshold.objects.create(currency="USD", channel="api", amount_minor=5000)
        payer = funded_account("500.00")
        payee = open_account()
        entered = post_movement(
            "transfer", payer, payee, "90.00", actor=teller, channel="api"
        ).journal

        services.journal_reject(
            journal_id=entered.pk, reason="no", actor=supervisor, now=timezone.now()
        )
        post_movement("transfer", payer, payee, "100.00")

        assert ledger_balance(payer) == "400.00"
