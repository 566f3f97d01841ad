"""Fee legs post with the principal as one journal: balanced, funds-checked on amount + fee +
tax, explained by the rule and version that produced them, and undone by a reversal.

These call ``ledger.posting.journal_post`` directly with ``assessment.legs(...)``; the
movement service's own wiring is tested with it.
"""

import pytest
from django.db import transaction
from django.utils import timezone

from banksim.core.money import Money
from fees import services
from fees.models import FeeUsage
from ledger.errors import InsufficientFunds
from ledger.models import Entry, Journal
from ledger.posting import Leg, journal_post
from ledger.selectors import balance_snapshot, ledger_violations
from ledger.services import journal_reverse

pytestmark = pytest.mark.django_db


def balance(account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


def post_transfer(bank, payer, payee, amount: str, *, channel="teller"):
    money = Money.parse(amount, payer.currency)
    with transaction.atomic():
        assessment = services.fee_assess(
            event="transfer_out",
            payer_account_id=payer.pk,
            amount=money,
            channel=channel,
            business_date=bank.business_date,
            count_usage=True,
        )
        posted = journal_post(
            legs=[Leg(payer.pk, "D", money), Leg(payee.pk, "C", money), *assessment.legs(payer.pk)],
            txn_type="transfer",
            channel=channel,
            business_date=bank.business_date,
            now=timezone.now(),
            details={"fees": assessment.details()},
        )
    return Journal.objects.get(pk=posted.journal_id), assessment


def quote(bank, payer, amount: str):
    return services.fee_assess(
        event="transfer_out",
        payer_account_id=payer.pk,
        amount=Money.parse(amount, payer.currency),
        channel="teller",
        business_date=bank.business_date,
        count_usage=False,
    )


@pytest.fixture
def percent_fee_with_tax(fee_rule):
    return fee_rule(calc_type="percent", rate_percent="0.5", min_fee="1.00", tax_rate_percent="15")


class TestTransferWithFee:
    def test_posts_one_balanced_journal_with_fee_and_tax_legs(
        self, bank, percent_fee_with_tax, funded_account, open_account
    ):
        payer = funded_account("500.00")
        payee = open_account()
        income = bank.office_account("fee_income")
        tax = bank.office_account("tax_payable")

        journal, _ = post_transfer(bank, payer, payee, "400.00")

        entries = list(
            Entry.objects.filter(journal=journal)
            .order_by("id")
            .values_list("account_id", "side", "amount_minor", "purpose")
        )
        assert entries == [
            (payer.pk, "D", 40000, "principal"),
            (payee.pk, "C", 40000, "principal"),
            (payer.pk, "D", 200, "fee"),
            (income.pk, "C", 200, "fee"),
            (payer.pk, "D", 30, "fee_tax"),
            (tax.pk, "C", 30, "fee_tax"),
        ]
        assert (balance(payer), balance(payee)) == ("97.70", "400.00")
        assert (balance(income), balance(tax)) == ("2.00", "0.30")
        assert ledger_violations() == []

    def test_the_journal_says_which_rule_and_version_charged_it_and_why(
        self, bank, percent_fee_with_tax, funded_account, open_account
    ):
        payer, payee = funded_account("500.00"), open_account()

        journal, _ = post_transfer(bank, payer, payee, "400.00")

        [fee] = journal.details["fees"]
        assert (fee["rule_id"], fee["rule_version"]) == (percent_fee_with_tax.pk, 1)
        assert (fee["fee"], fee["tax"], fee["base_amount"]) == ("2.00", "0.30", "400.00")
        assert fee["inputs"]["rate_percent"] == "0.5"
        assert fee["inputs"]["tax_rate_percent"] == "15"

    def test_the_quote_equals_the_posted_fee(
        self, bank, percent_fee_with_tax, funded_account, open_account
    ):
        payer, payee = funded_account("500.00"), open_account()
        quoted = quote(bank, payer, "123.45")

        _, posted = post_transfer(bank, payer, payee, "123.45")

        assert quoted.details() == posted.details()

    def test_a_payer_who_cannot_afford_amount_plus_fee_is_refused_and_nothing_posts(
        self, bank, percent_fee_with_tax, funded_account, open_account
    ):
        payer, payee = funded_account("100.00"), open_account()
        journals = Journal.objects.count()

        with pytest.raises(InsufficientFunds):
            post_transfer(bank, payer, payee, "99.50")

        assert balance(payer) == "100.00"
        assert Journal.objects.count() == journals

    def test_an_overdraft_product_may_pay_the_fee_into_its_overdraft(
        self, bank, percent_fee_with_tax, funded_account, open_account
    ):
        payer, payee = funded_account("100.00", "CAA-USD"), open_account()

        post_transfer(bank, payer, payee, "100.00")

        assert balance(payer) == "-1.15"

    def test_a_free_use_posts_no_fee_legs(self, bank, fee_rule, funded_account, open_account):
        fee_rule(free_uses=1)
        payer, payee = funded_account("50.00"), open_account()

        free, _ = post_transfer(bank, payer, payee, "10.00")
        charged, _ = post_transfer(bank, payer, payee, "10.00")

        assert Entry.objects.filter(journal=free).count() == 2
        assert Entry.objects.filter(journal=charged, purpose="fee").count() == 2
        assert balance(payer) == "29.00"


class TestReversal:
    def test_reversing_a_transfer_reverses_its_fee_and_tax(
        self, bank, percent_fee_with_tax, funded_account, open_account
    ):
        payer, payee = funded_account("500.00"), open_account()
        income, tax = bank.office_account("fee_income"), bank.office_account("tax_payable")
        journal, _ = post_transfer(bank, payer, payee, "400.00")

        reversal = journal_reverse(
            journal_id=journal.pk,
            reason="keyed twice",
            actor=None,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )

        mirrored = Entry.objects.filter(journal=reversal, purpose__in=["fee", "fee_tax"])
        assert sorted(mirrored.values_list("side", "amount_minor")) == [
            ("C", 30),
            ("C", 200),
            ("D", 30),
            ("D", 200),
        ]
        assert (balance(payer), balance(payee)) == ("500.00", "0.00")
        assert (balance(income), balance(tax)) == ("0.00", "0.00")
        assert ledger_violations() == []

    def test_a_reversed_free_use_is_given_back(self, bank, fee_rule, funded_account, open_account):
        fee_rule(free_uses=1)
        payer, payee = funded_account("50.00"), open_account()
        journal, _ = post_transfer(bank, payer, payee, "10.00")
        journal_reverse(
            journal_id=journal.pk,
            reason="customer request",
            actor=None,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )

        with transaction.atomic():
            services.fee_usage_release(fees=journal.details["fees"])
        again, _ = post_transfer(bank, payer, payee, "10.00")

        assert FeeUsage.objects.get(account=payer).used == 1
        assert again.details["fees"][0]["free_use"] is True


class TestDepositWithFee:
    def test_the_fee_is_deducted_from_the_deposit_in_one_journal(
        self, bank, fee_rule, open_account
    ):
        fee_rule(event="cash_deposit", flat_fee="0.50", tax_rate_percent="10")
        saver = open_account()
        cash = bank.office_account("teller_cash")
        gross = Money.parse("20.00", "USD")

        with transaction.atomic():
            assessment = services.fee_assess(
                event="cash_deposit",
                payer_account_id=saver.pk,
                amount=gross,
                channel="teller",
                business_date=bank.business_date,
                count_usage=True,
            )
            principal = [Leg(cash.pk, "D", gross), Leg(saver.pk, "C", gross)]
            journal_post(
                legs=assessment.legs_with(principal, saver.pk),
                txn_type="cash_deposit",
                channel="teller",
                business_date=bank.business_date,
                now=timezone.now(),
                details={"fees": assessment.details()},
            )

        assert balance(saver) == "19.45"
        assert balance(bank.office_account("fee_income")) == "0.50"
        assert balance(bank.office_account("tax_payable")) == "0.05"
        assert ledger_violations() == []
