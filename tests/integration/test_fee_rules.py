"""Fee rules, waivers and assessment against real PostgreSQL: validation with nothing saved,
the database's own guards, versions and history, rule choice by date and scope, free uses,
waivers, and the query budget of the posting path."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import ProductNotFound
from banksim.core.money import Money, UnknownCurrency
from fees import services
from fees.errors import (
    FeeRuleNotFound,
    ImmutableField,
    InvalidCaps,
    InvalidGlAccount,
    InvalidPeriod,
    InvalidScope,
    InvalidTiers,
    InvalidWaiver,
    NegativeAmount,
    NegativeRate,
    OverlappingRule,
    TaxAccountRequired,
    UnknownEvent,
)
from fees.models import FeeRule, FeeUsage, FeeWaiver
from fees.specs import FeeRuleSpec, parse_tiers
from ledger.errors import AccountNotFound, LedgerCurrencyMismatch
from tests.factories import BUSINESS_DATE, CustomerFactory

pytestmark = pytest.mark.django_db

TODAY = BUSINESS_DATE
TOMORROW = TODAY + dt.timedelta(days=1)
USD = "USD"


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def spec(bank, **overrides) -> FeeRuleSpec:
    fields = {
        "name": "Transfer fee",
        "event": "transfer_out",
        "currency": USD,
        "calc_type": "flat",
        "flat_fee": usd("1.00"),
        "income_account_id": bank.office_account("fee_income").pk,
        "effective_from": TODAY,
        **overrides,
    }
    return FeeRuleSpec(**fields)


def assess(
    account, amount="100.00", *, event="transfer_out", channel="teller", on=TODAY, count=False
):
    return services.fee_assess(
        event=event,
        payer_account_id=account.pk,
        amount=Money.parse(amount, account.currency),
        channel=channel,
        business_date=on,
        count_usage=count,
    )


def fee(account, amount="100.00", **kw) -> str:
    charges = assess(account, amount, **kw).charges
    return charges[0].fee.to_wire() if charges else "none"


class TestFeeRuleCreate:
    def test_creates_version_1_with_a_history_row(self, bank, supervisor):
        rule = services.fee_rule_create(spec=spec(bank), actor=supervisor)

        rule.refresh_from_db()
        assert rule.version == 1
        assert rule.flat_minor == 100
        assert rule.history.count() == 1
        assert rule.history.first().history_user == supervisor

    def test_stores_tiers_and_caps_in_minor_units(self, bank):
        tiers = parse_tiers(
            [{"up_to": "1000.00", "flat_fee": "1.00"}, {"up_to": None, "rate_percent": "0.1"}], USD
        )

        rule = services.fee_rule_create(
            spec=spec(bank, calc_type="tiered", flat_fee=None, tiers=tiers, max_fee=usd("20.00")),
            actor=None,
        )

        rule.refresh_from_db()
        assert rule.tiers == [
            {"up_to_minor": 100000, "flat_minor": 100, "rate_percent": "0"},
            {"up_to_minor": None, "flat_minor": 0, "rate_percent": "0.1"},
        ]
        assert (rule.min_fee_minor, rule.max_fee_minor) == (None, 2000)

    @pytest.mark.parametrize(
        ("overrides", "error"),
        [
            ({"event": "teleport"}, UnknownEvent),
            (
                {"calc_type": "percent", "flat_fee": None, "rate_percent": Decimal("-0.5")},
                NegativeRate,
            ),
            ({"flat_fee": usd("-1.00")}, NegativeAmount),
            ({"min_fee": usd("5.00"), "max_fee": usd("1.00")}, InvalidCaps),
            ({"calc_type": "tiered", "flat_fee": None}, InvalidTiers),
            ({"effective_to": TODAY}, InvalidPeriod),
            ({"tax_rate_percent": Decimal("15")}, TaxAccountRequired),
            ({"channel": "fax"}, InvalidScope),
            ({"segment": "vip"}, InvalidScope),
            ({"priority": -1}, InvalidScope),
            ({"currency": "XXX"}, UnknownCurrency),
        ],
    )
    def test_refuses_bad_input_and_saves_nothing(self, bank, overrides, error):
        with pytest.raises(error):
            services.fee_rule_create(spec=spec(bank, **overrides), actor=None)

        assert not FeeRule.objects.exists()

    def test_refuses_a_customer_account_as_income_account(self, bank, open_account):
        customer_account = open_account()

        with pytest.raises(InvalidGlAccount) as exc:
            services.fee_rule_create(
                spec=spec(bank, income_account_id=customer_account.pk), actor=None
            )

        assert "income_account" in exc.value.errors
        assert not FeeRule.objects.exists()

    def test_refuses_a_gl_account_of_another_currency(self, bank):
        with pytest.raises(InvalidGlAccount):
            services.fee_rule_create(
                spec=spec(
                    bank,
                    tax_rate_percent=Decimal("10"),
                    tax_account_id=bank.office_account("tax_payable", "JPY").pk,
                ),
                actor=None,
            )

        assert not FeeRule.objects.exists()

    def test_refuses_a_product_of_another_currency(self, bank):
        with pytest.raises(InvalidScope):
            services.fee_rule_create(
                spec=spec(bank, product_id=bank.products["SBA-JPY"].pk), actor=None
            )

    def test_refuses_an_unknown_product(self, bank):
        with pytest.raises(ProductNotFound):
            services.fee_rule_create(spec=spec(bank, product_id=10**9), actor=None)


class TestOverlappingPeriods:
    def test_refuses_a_second_open_ended_rule_for_the_same_scope(self, bank, fee_rule):
        first = fee_rule()

        with pytest.raises(OverlappingRule) as exc:
            fee_rule(effective_from=TOMORROW)

        assert exc.value.extra["conflicting_rule"] == first.pk
        assert list(FeeRule.objects.values_list("pk", flat=True)) == [first.pk]

    def test_allows_back_to_back_periods(self, bank, fee_rule):
        fee_rule(effective_to=TOMORROW)

        later = fee_rule(effective_from=TOMORROW, flat_fee="2.00")

        assert later.pk

    def test_refuses_a_period_inside_another(self, bank, fee_rule):
        fee_rule(effective_to=TODAY + dt.timedelta(days=30))

        with pytest.raises(OverlappingRule):
            fee_rule(
                effective_from=TODAY + dt.timedelta(days=5),
                effective_to=TODAY + dt.timedelta(days=6),
            )

    def test_allows_the_same_period_for_another_scope(self, bank, fee_rule):
        fee_rule()

        teller_rule = fee_rule(channel="teller")
        product_rule = fee_rule(product_id=bank.products["SBA-USD"].pk)

        assert teller_rule.pk and product_rule.pk

    def test_the_database_refuses_an_overlap_the_service_did_not_see(self, bank, fee_rule):
        rule = fee_rule()
        copy = FeeRule.objects.get(pk=rule.pk)
        copy.pk = None
        copy.effective_from = TOMORROW

        with (
            pytest.raises(IntegrityError, match="fee_rule_no_overlap_per_scope"),
            transaction.atomic(),
        ):
            copy.save()

    def test_the_database_treats_any_product_as_one_scope(self, bank, fee_rule):
        rule = fee_rule(product_id=None)
        copy = FeeRule.objects.get(pk=rule.pk)
        copy.pk = None

        with pytest.raises(IntegrityError), transaction.atomic():
            copy.save()


class TestDatabaseChecks:
    @pytest.mark.parametrize(
        ("column", "value", "constraint"),
        [
            ("rate_percent", Decimal("-1"), "fee_rule_rates_0_to_100"),
            ("tax_rate_percent", Decimal("100.5"), "fee_rule_rates_0_to_100"),
            ("flat_minor", -1, "fee_rule_amounts_gte_0"),
            ("min_fee_minor", 500, "fee_rule_min_lte_max"),
            ("event", "teleport", "fee_rule_event_known"),
            ("effective_to", TODAY, "fee_rule_period_ordered"),
            ("version", 0, "fee_rule_version_gte_1"),
        ],
    )
    def test_refuses_what_the_service_refuses(self, bank, fee_rule, column, value, constraint):
        rule = fee_rule(max_fee="1.00")

        with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
            FeeRule.objects.filter(pk=rule.pk).update(**{column: value})

    def test_a_waiver_names_one_account_or_one_customer(self, bank, open_account):
        account = open_account()

        with (
            pytest.raises(IntegrityError, match="fee_waiver_account_xor_customer"),
            transaction.atomic(),
        ):
            FeeWaiver.objects.create(
                account=account,
                customer=account.customer,
                reason="both",
                valid_from=TODAY,
                expires_on=TOMORROW,
                created_at=timezone.now(),
            )


class TestFeeRuleUpdate:
    def test_bumps_the_version_and_keeps_each_version_in_history(self, bank, fee_rule, supervisor):
        rule = fee_rule()

        updated = services.fee_rule_update(
            rule_id=rule.pk, changes={"flat_fee": usd("1.50")}, actor=supervisor
        )

        assert updated.version == 2
        assert updated.flat_minor == 150
        history = list(rule.history.order_by("history_id").values_list("version", "flat_minor"))
        assert history == [(1, 100), (2, 150)]

    def test_refuses_to_change_the_event(self, bank, fee_rule):
        rule = fee_rule()

        with pytest.raises(ImmutableField):
            services.fee_rule_update(
                rule_id=rule.pk, changes={"event": "cash_withdrawal"}, actor=None
            )

        rule.refresh_from_db()
        assert (rule.event, rule.version) == ("transfer_out", 1)

    def test_a_bad_change_saves_nothing(self, bank, fee_rule):
        rule = fee_rule(calc_type="percent", rate_percent="1")

        with pytest.raises(InvalidCaps):
            services.fee_rule_update(
                rule_id=rule.pk,
                changes={"min_fee": usd("9.00"), "max_fee": usd("2.00")},
                actor=None,
            )

        rule.refresh_from_db()
        assert (rule.version, rule.min_fee_minor, rule.max_fee_minor) == (1, None, None)
        assert rule.history.count() == 1

    def test_refuses_a_change_that_overlaps_another_rule(self, bank, fee_rule):
        fee_rule(effective_from=TOMORROW)
        earlier = fee_rule(effective_from=TODAY - dt.timedelta(days=10), effective_to=TOMORROW)

        with pytest.raises(OverlappingRule):
            services.fee_rule_update(rule_id=earlier.pk, changes={"effective_to": None}, actor=None)

    def test_an_unknown_rule_is_not_found(self, bank):
        with pytest.raises(FeeRuleNotFound):
            services.fee_rule_update(rule_id=10**9, changes={"name": "x"}, actor=None)

    def test_an_edit_does_not_rewrite_what_an_earlier_assessment_recorded(
        self, bank, fee_rule, open_account
    ):
        payer = open_account()
        rule = fee_rule()
        before = assess(payer).details()

        services.fee_rule_update(rule_id=rule.pk, changes={"flat_fee": usd("3.00")}, actor=None)
        after = assess(payer).details()

        assert (before[0]["fee"], before[0]["rule_version"]) == ("1.00", 1)
        assert (after[0]["fee"], after[0]["rule_version"]) == ("3.00", 2)


class TestRuleInForce:
    def test_no_rule_means_no_charge(self, bank, open_account):
        payer = open_account()

        assert assess(payer).charges == []

    def test_the_rule_in_force_on_the_business_date_applies(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(
            effective_from=TODAY - dt.timedelta(days=30), effective_to=TOMORROW, flat_fee="1.00"
        )
        fee_rule(effective_from=TOMORROW, flat_fee="2.00")

        fees = [fee(payer, on=day) for day in (TODAY - dt.timedelta(days=31), TODAY, TOMORROW)]

        assert fees == ["none", "1.00", "2.00"]

    def test_effective_to_is_exclusive(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(effective_to=TOMORROW)

        assert (fee(payer, on=TODAY), fee(payer, on=TOMORROW)) == ("1.00", "none")

    def test_another_event_or_currency_is_not_charged(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(event="cash_withdrawal")
        fee_rule(currency="JPY", flat_fee="100")

        assert fee(payer) == "none"


class TestScopeSpecificity:
    @pytest.fixture
    def premium_payer(self, bank, open_account):
        return open_account(
            "SBA-USD", customer=CustomerFactory(home_branch=bank.branch, segment="premium")
        )

    def test_the_most_specific_matching_rule_wins(self, bank, fee_rule, premium_payer):
        sba = bank.products["SBA-USD"].pk
        fee_rule(flat_fee="1.00")
        fee_rule(flat_fee="2.00", channel="teller")
        fee_rule(flat_fee="3.00", channel="teller", segment="premium")
        fee_rule(flat_fee="4.00", product_id=sba, channel="teller", segment="premium")

        assert fee(premium_payer) == "4.00"

    def test_two_scopes_beat_one_and_one_beats_none(self, bank, fee_rule, premium_payer):
        fee_rule(flat_fee="1.00")
        fee_rule(flat_fee="2.00", segment="premium")
        fee_rule(flat_fee="3.00", segment="premium", channel="teller")

        assert [fee(premium_payer, channel=c) for c in ("teller", "api")] == ["3.00", "2.00"]

    def test_a_rule_for_another_channel_segment_or_product_does_not_match(
        self, bank, fee_rule, premium_payer
    ):
        fee_rule(flat_fee="1.00")
        fee_rule(flat_fee="5.00", channel="api")
        fee_rule(flat_fee="6.00", segment="staff")
        fee_rule(flat_fee="7.00", product_id=bank.products["CAA-USD"].pk)

        assert fee(premium_payer, channel="teller") == "1.00"

    def test_lower_priority_wins_among_equally_specific_rules(self, bank, fee_rule, premium_payer):
        fee_rule(flat_fee="2.00", channel="teller", priority=50)
        fee_rule(flat_fee="3.00", segment="premium", priority=10)

        assert fee(premium_payer) == "3.00"

    def test_the_older_rule_wins_a_full_tie(self, bank, fee_rule, premium_payer):
        fee_rule(flat_fee="2.00", channel="teller")
        fee_rule(flat_fee="3.00", segment="premium")

        assert fee(premium_payer) == "2.00"

    def test_a_more_specific_zero_rule_makes_it_free(self, bank, fee_rule, premium_payer):
        fee_rule(flat_fee="2.00")
        fee_rule(flat_fee="0", segment="premium")

        assessment = assess(premium_payer)

        assert assessment.charges[0].fee.is_zero()
        assert assessment.legs(premium_payer.pk) == []

    def test_the_charge_says_which_scope_matched(self, bank, fee_rule, premium_payer):
        rule = fee_rule(flat_fee="2.00", segment="premium", priority=7)

        charge = assess(premium_payer).charges[0]

        assert charge.rule_id == rule.pk and charge.rule_version == 1
        assert charge.inputs["scope"] == {"product_id": None, "channel": "", "segment": "premium"}
        assert charge.inputs["priority"] == 7
        assert charge.income_account_id == bank.office_account("fee_income").pk


class TestAssessmentOfAmounts:
    def test_percent_with_caps_and_tax(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(
            calc_type="percent",
            rate_percent="0.5",
            min_fee="1.00",
            max_fee="10.00",
            tax_rate_percent="15",
        )

        charges = [assess(payer, a).charges[0] for a in ("12.50", "1000.00", "5000.00")]

        assert [(c.fee.to_wire(), c.tax.to_wire()) for c in charges] == [
            ("1.00", "0.15"),
            ("5.00", "0.75"),
            ("10.00", "1.50"),
        ]
        assert charges[0].tax_account_id == bank.office_account("tax_payable").pk

    @pytest.mark.parametrize(
        ("currency", "amount", "expected"),
        [("JPY", "250", "2"), ("KWD", "0.350", "0.004"), ("USD", "5.00", "0.02")],
    )
    def test_rounds_at_each_currency_exponent(
        self, bank, fee_rule, open_account, currency, amount, expected
    ):
        payer = open_account(f"SBA-{currency}")
        fee_rule(
            currency=currency, calc_type="percent", rate_percent="1" if currency != "USD" else "0.5"
        )

        assert fee(payer, amount) == expected

    def test_refuses_an_amount_in_another_currency(self, bank, open_account):
        payer = open_account()

        with pytest.raises(LedgerCurrencyMismatch):
            services.fee_assess(
                event="transfer_out",
                payer_account_id=payer.pk,
                amount=Money.parse("100", "JPY"),
                channel="teller",
                business_date=TODAY,
                count_usage=False,
            )

    def test_refuses_an_unknown_event_account_or_negative_amount(self, bank, open_account):
        payer = open_account()

        with pytest.raises(UnknownEvent):
            assess(payer, event="teleport")
        with pytest.raises(NegativeAmount):
            assess(payer, "-1.00")
        with pytest.raises(AccountNotFound):
            services.fee_assess(
                event="transfer_out",
                payer_account_id=10**9,
                amount=usd("1.00"),
                channel="teller",
                business_date=TODAY,
                count_usage=False,
            )


class TestWaivers:
    def waive(
        self, *, account=None, customer=None, event="", valid_from=TODAY, expires_on=TOMORROW
    ):
        return services.fee_waiver_create(
            account_id=account.pk if account else None,
            customer_id=customer.pk if customer else None,
            event=event,
            reason="complaint 42 goodwill",
            valid_from=valid_from,
            expires_on=expires_on,
            actor=None,
            now=timezone.now(),
        )

    def test_an_account_waiver_zeroes_fee_and_tax_and_is_recorded(
        self, bank, fee_rule, open_account
    ):
        payer = open_account()
        fee_rule(tax_rate_percent="10")
        waiver = self.waive(account=payer)

        charge = assess(payer).charges[0]

        assert (charge.fee.to_wire(), charge.tax.to_wire()) == ("0.00", "0.00")
        assert charge.waived_by == waiver.pk
        assert charge.inputs["fee_before_relief"] == "1.00"
        assert charge.inputs["tax_before_relief"] == "0.10"

    def test_a_customer_waiver_covers_every_account_of_the_customer(
        self, bank, fee_rule, open_account
    ):
        payer = open_account()
        sibling = open_account("CAA-USD", customer=payer.customer)
        stranger = open_account()
        fee_rule()
        self.waive(customer=payer.customer)

        assert [fee(a) for a in (payer, sibling, stranger)] == ["0.00", "0.00", "1.00"]

    def test_a_waiver_applies_from_valid_from_until_the_day_before_it_expires(
        self, bank, fee_rule, open_account
    ):
        payer = open_account()
        fee_rule(effective_from=TODAY - dt.timedelta(days=5))
        self.waive(account=payer, valid_from=TODAY - dt.timedelta(days=1), expires_on=TOMORROW)

        days = [TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1), TODAY, TOMORROW]

        assert [fee(payer, on=d) for d in days] == ["1.00", "0.00", "0.00", "1.00"]

    def test_a_waiver_for_one_event_leaves_other_events_charged(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule()
        fee_rule(event="cash_withdrawal", flat_fee="2.00")
        self.waive(account=payer, event="cash_withdrawal")

        assert (fee(payer), fee(payer, event="cash_withdrawal")) == ("1.00", "0.00")

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"event": "teleport"}, UnknownEvent),
            ({"expires_on": TODAY}, InvalidPeriod),
            ({"both": True}, InvalidWaiver),
            ({"neither": True}, InvalidWaiver),
            ({"reason": "  "}, InvalidWaiver),
        ],
    )
    def test_refuses_a_bad_waiver_and_saves_nothing(self, bank, open_account, kwargs, error):
        account = open_account()
        args = {
            "account_id": account.pk,
            "customer_id": None,
            "event": "",
            "reason": "goodwill",
            "valid_from": TODAY,
            "expires_on": TOMORROW,
        }
        if kwargs.pop("both", False):
            args["customer_id"] = account.customer_id
        if kwargs.pop("neither", False):
            args["account_id"] = None
        args.update(kwargs)

        with pytest.raises(error):
            services.fee_waiver_create(**args, actor=None, now=timezone.now())

        assert not FeeWaiver.objects.exists()


class TestFreeUses:
    def post(self, payer):
        with transaction.atomic():
            return assess(payer, count=True).charges[0]

    def test_the_first_n_uses_of_the_period_are_free(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=2, tax_rate_percent="10")

        charges = [self.post(payer) for _ in range(3)]

        assert [(c.free_use, c.fee.to_wire(), c.tax.to_wire()) for c in charges] == [
            (True, "0.00", "0.00"),
            (True, "0.00", "0.00"),
            (False, "1.00", "0.10"),
        ]
        assert [c.inputs["use_number"] for c in charges] == [1, 2, 3]
        assert FeeUsage.objects.get(account=payer).used == 3

    def test_a_quote_reads_the_count_without_taking_a_use(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=1)
        self.post(payer)

        quotes = [assess(payer).charges[0] for _ in range(2)]

        assert [(q.free_use, q.fee.to_wire()) for q in quotes] == [(False, "1.00")] * 2
        assert FeeUsage.objects.get(account=payer).used == 1

    def test_a_quote_on_a_fresh_period_is_free(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=1, effective_from=TODAY - dt.timedelta(days=40))
        self.post(payer)

        assert fee(payer, on=TODAY + dt.timedelta(days=1)) == "0.00"  # 1 December: new month
        assert not FeeUsage.objects.filter(period_start=dt.date(2026, 12, 1)).exists()

    def test_a_daily_period_restarts_each_business_day(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=1, free_period="day")
        self.post(payer)

        with transaction.atomic():
            tomorrow = assess(payer, count=True, on=TOMORROW).charges[0]

        assert tomorrow.free_use

    def test_counters_are_per_account(self, bank, fee_rule, open_account):
        payer, other = open_account(), open_account()
        fee_rule(free_uses=1)
        self.post(payer)

        assert self.post(other).free_use

    def test_releasing_a_reversed_use_gives_it_back(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=1)
        first = self.post(payer)
        details = [first.to_details()]

        with transaction.atomic():
            released = services.fee_usage_release(fees=details)

        assert released == 1
        assert FeeUsage.objects.get(account=payer).used == 0
        assert self.post(payer).free_use
        assert details[0]["usage"]["period_start"] == "2026-11-01"

    def test_release_ignores_charges_that_counted_nothing(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule()
        details = [self.post(payer).to_details()]

        with transaction.atomic():
            assert services.fee_usage_release(fees=details) == 0

    @pytest.mark.django_db(transaction=True)
    def test_two_concurrent_postings_cannot_both_take_the_last_free_use(
        self, bank, fee_rule, open_account
    ):
        payer = open_account()
        fee_rule(free_uses=1)
        barrier = threading.Barrier(2)
        outcomes: list[bool] = []

        def post_in_own_transaction():
            try:
                with transaction.atomic():
                    barrier.wait(timeout=10)
                    charge = assess(payer, count=True).charges[0]
                    time.sleep(0.2)  # hold the counter row while the other thread tries
                outcomes.append(charge.free_use)
            finally:
                connection.close()

        threads = [threading.Thread(target=post_in_own_transaction) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        assert sorted(outcomes) == [False, True]
        assert FeeUsage.objects.get(account=payer).used == 2

    @pytest.mark.django_db(transaction=True)
    def test_a_counted_use_needs_the_posting_transaction(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=1)

        with pytest.raises(AssertionError):
            assess(payer, count=True)


class TestQueryBudget:
    def queries(self, fn) -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return [q["sql"] for q in ctx.captured_queries]

    def test_a_posting_without_free_uses_costs_one_query(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(tax_rate_percent="15")
        services.fee_waiver_create(
            account_id=payer.pk,
            customer_id=None,
            event="cash_deposit",
            reason="promo",
            valid_from=TODAY,
            expires_on=TOMORROW,
            actor=None,
            now=timezone.now(),
        )

        with transaction.atomic():
            sql = self.queries(lambda: assess(payer, count=True))

        assert len(sql) == 1

    def test_a_posting_with_free_uses_costs_two_queries(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=3)

        with transaction.atomic():
            sql = self.queries(lambda: assess(payer, count=True))

        assert len(sql) == 2
        assert "ON CONFLICT" in sql[1]

    def test_a_quote_costs_one_query_and_writes_nothing(self, bank, fee_rule, open_account):
        payer = open_account()
        fee_rule(free_uses=3)

        sql = self.queries(lambda: assess(payer))

        assert len(sql) == 1 and sql[0].lstrip().upper().startswith("SELECT")
        assert not FeeUsage.objects.exists()
