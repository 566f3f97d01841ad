"""Daily limits: rule selection, amount and count limits, approval routing, release, dates."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.services import AccountNotFound, CustomerNotFound
from banksim.core.money import Money, UnknownCurrency
from limits import selectors, services
from limits.errors import (
    DailyLimitExceeded,
    LimitConsumptionInvalid,
    LimitCurrencyMismatch,
    LimitOfficeScope,
    LimitRuleInvalid,
    LimitRuleNotFound,
    LimitRuleWithoutLimit,
    LimitScopeAmbiguous,
)
from limits.models import LimitRule, LimitUsage
from limits.services import LimitRuleChanges, LimitRuleSpec
from tests.factories import BUSINESS_DATE, CustomerFactory

pytestmark = pytest.mark.django_db

NEXT_DAY = BUSINESS_DATE + dt.timedelta(days=1)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def make_rule(**fields) -> LimitRule:
    fields.setdefault("currency", "USD")
    return services.limit_rule_create(spec=LimitRuleSpec(**fields), actor=None, now=timezone.now())


def consume(
    account,
    amount: str,
    *,
    channel: str = "teller",
    txn_type: str = "transfer",
    business_date: dt.date = BUSINESS_DATE,
    enforce: bool = True,
) -> services.LimitDecision:
    with transaction.atomic():
        return services.limit_consume(
            account_id=account.pk,
            amount=Money.parse(amount, account.currency),
            channel=channel,
            txn_type=txn_type,
            business_date=business_date,
            enforce=enforce,
        )


def used(rule: LimitRule, subject_id: int, on: dt.date = BUSINESS_DATE) -> tuple[int, int]:
    row = LimitUsage.objects.filter(rule=rule, subject_id=subject_id, business_date=on).first()
    return (row.used_amount_minor, row.used_count) if row else (0, 0)


@pytest.fixture
def payer(bank, open_account):
    return open_account("SBA-USD")


class TestRuleSelection:
    def test_the_most_restrictive_applicable_rule_binds(self, bank, payer):
        make_rule(max_amount=usd("1000"))
        product_rule = make_rule(product_id=payer.product_id, max_amount=usd("500"))

        consume(payer, "400")
        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "101")

        assert refused.value.extra["rule_id"] == product_rule.pk
        assert refused.value.extra["remaining_amount"] == "100.00"

    def test_a_debit_is_counted_by_every_applicable_rule(self, bank, payer):
        bank_rule = make_rule(max_amount=usd("1000"))
        account_rule = make_rule(account_id=payer.pk, max_count=5)

        decision = consume(payer, "250")

        assert decision.requires_approval is False
        assert decision.consumed == [
            {"rule_id": bank_rule.pk, "subject_id": payer.pk, "amount_minor": 25000},
            {"rule_id": account_rule.pk, "subject_id": payer.pk, "amount_minor": 25000},
        ]
        assert used(bank_rule, payer.pk) == (25000, 1)
        assert used(account_rule, payer.pk) == (25000, 1)

    def test_rules_of_other_accounts_products_and_customers_do_not_apply(
        self, bank, payer, open_account
    ):
        other = open_account("CAA-USD")
        make_rule(account_id=other.pk, max_amount=usd("1"))
        make_rule(product_id=other.product_id, max_amount=usd("1"))
        make_rule(customer_id=other.customer_id, max_amount=usd("1"))

        decision = consume(payer, "500")

        assert decision.consumed == []

    def test_channel_and_transaction_type_filters_narrow_a_rule(self, bank, payer):
        api_only = make_rule(channel="api", max_amount=usd("10"))
        withdrawals = make_rule(txn_type="cash_withdrawal", max_amount=usd("10"))
        any_debit = make_rule(max_amount=usd("1000"))

        decision = consume(payer, "50", channel="teller", txn_type="transfer")

        assert [c["rule_id"] for c in decision.consumed] == [any_debit.pk]
        assert used(api_only, payer.pk) == (0, 0)
        assert used(withdrawals, payer.pk) == (0, 0)

    def test_rules_in_another_currency_and_inactive_rules_do_not_apply(self, bank, payer):
        make_rule(currency="KWD", max_amount=Money.parse("1", "KWD"))
        switched_off = make_rule(max_amount=usd("1"))
        services.limit_rule_update(
            rule_id=switched_off.pk,
            changes=LimitRuleChanges(is_active=False),
            actor=None,
            now=timezone.now(),
        )

        decision = consume(payer, "500")

        assert decision.consumed == []

    def test_an_override_replaces_the_accounts_other_rules_even_when_looser(self, bank, payer):
        bank_rule = make_rule(max_amount=usd("100"))
        override, _ = services.limit_override_set(
            account_id=payer.pk,
            max_amount=usd("5000"),
            max_count=None,
            on_breach="refuse",
            channel="",
            txn_type="",
            name="house purchase",
            actor=None,
            now=timezone.now(),
        )

        decision = consume(payer, "3000")

        assert [c["rule_id"] for c in decision.consumed] == [override.pk]
        assert used(bank_rule, payer.pk) == (0, 0)

    def test_an_override_for_one_channel_leaves_the_other_channels_to_the_rules(self, bank, payer):
        bank_rule = make_rule(max_amount=usd("100"))
        services.limit_override_set(
            account_id=payer.pk,
            max_amount=usd("5000"),
            max_count=None,
            on_breach="refuse",
            channel="api",
            txn_type="",
            name="",
            actor=None,
            now=timezone.now(),
        )

        consume(payer, "3000", channel="api")
        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "3000", channel="teller")

        assert refused.value.extra["rule_id"] == bank_rule.pk

    def test_an_override_on_another_account_changes_nothing_here(self, bank, payer, open_account):
        sibling = open_account("SBA-USD")
        make_rule(max_amount=usd("100"))
        services.limit_override_set(
            account_id=sibling.pk,
            max_amount=usd("5000"),
            max_count=None,
            on_breach="refuse",
            channel="",
            txn_type="",
            name="",
            actor=None,
            now=timezone.now(),
        )

        with pytest.raises(DailyLimitExceeded):
            consume(payer, "3000")

    def test_a_customer_wide_rule_counts_all_the_customers_accounts_together(
        self, bank, open_account
    ):
        customer = CustomerFactory(home_branch=bank.branch)
        savings = open_account("SBA-USD", customer=customer)
        current = open_account("CAA-USD", customer=customer)
        rule = make_rule(customer_id=customer.pk, max_amount=usd("1000"))

        consume(savings, "600")
        with pytest.raises(DailyLimitExceeded) as refused:
            consume(current, "600")

        assert refused.value.extra["used_amount"] == "600.00"
        assert used(rule, customer.pk) == (60000, 1)

    def test_office_accounts_are_never_limited(self, bank):
        make_rule(max_amount=usd("1"))
        till = bank.office_account("teller_cash", "USD")

        decision = consume(till, "500")

        assert decision.consumed == []

    def test_credits_and_other_movement_types_consume_nothing_and_cost_no_query(
        self, bank, payer, django_assert_num_queries
    ):
        make_rule(max_amount=usd("1"))

        with transaction.atomic(), django_assert_num_queries(0):
            decision = services.limit_consume(
                account_id=payer.pk,
                amount=usd("500"),
                channel="teller",
                txn_type="cash_deposit",
                business_date=BUSINESS_DATE,
            )

        assert decision.consumed == []

    def test_consumption_is_one_database_round_trip(self, bank, payer, django_assert_num_queries):
        make_rule(max_amount=usd("1000"))
        make_rule(product_id=payer.product_id, max_count=3)
        make_rule(customer_id=payer.customer_id, max_amount=usd("900"))

        with transaction.atomic(), django_assert_num_queries(1):
            decision = services.limit_consume(
                account_id=payer.pk,
                amount=usd("10"),
                channel="teller",
                txn_type="transfer",
                business_date=BUSINESS_DATE,
            )

        assert len(decision.consumed) == 3


class TestAmountAndCountLimits:
    def test_exactly_the_limit_is_allowed_and_one_cent_more_is_not(self, bank, payer):
        rule = make_rule(max_amount=usd("100"))

        consume(payer, "99.99")
        with pytest.raises(DailyLimitExceeded):
            consume(payer, "0.02")
        consume(payer, "0.01")

        assert used(rule, payer.pk) == (10000, 2)

    def test_a_first_debit_above_the_limit_is_refused(self, bank, payer):
        rule = make_rule(max_amount=usd("100"))

        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "100.01")

        assert refused.value.extra["used_amount"] == "0.00"
        assert used(rule, payer.pk) == (0, 0)

    def test_a_breach_states_the_limit_what_is_used_and_what_remains(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"), max_count=10)
        consume(payer, "800")

        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "300")

        error = refused.value
        assert error.code == "limits.daily_limit_exceeded"
        assert error.status == 422
        assert error.extra == {
            "rule_id": rule.pk,
            "currency": "USD",
            "requested_amount": "300.00",
            "limit_amount": "1000.00",
            "used_amount": "800.00",
            "remaining_amount": "200.00",
            "limit_count": 10,
            "used_count": 1,
            "remaining_count": 9,
        }
        assert used(rule, payer.pk) == (80000, 1)

    def test_a_count_limit_refuses_the_debit_after_the_last_allowed_one(self, bank, payer):
        rule = make_rule(max_count=2)
        consume(payer, "1")
        consume(payer, "1")

        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "1")

        assert refused.value.extra["limit_count"] == 2
        assert refused.value.extra["remaining_count"] == 0
        assert refused.value.extra["limit_amount"] is None
        assert used(rule, payer.pk) == (200, 2)

    def test_a_breach_of_one_rule_leaves_the_other_rules_untouched(self, bank, payer):
        roomy = make_rule(max_amount=usd("1000"))
        tight = make_rule(account_id=payer.pk, max_amount=usd("300"))
        consume(payer, "200")

        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "200")

        assert refused.value.extra["rule_id"] == tight.pk
        assert used(roomy, payer.pk) == (20000, 1)
        assert used(tight, payer.pk) == (20000, 1)

    def test_limits_count_in_the_currencys_minor_units(self, bank, open_account):
        payer = open_account("SBA-KWD")
        rule = make_rule(currency="KWD", max_amount=Money.parse("1.500", "KWD"))

        consume(payer, "1.499")
        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "0.002")

        assert refused.value.extra["remaining_amount"] == "0.001"
        assert used(rule, payer.pk) == (1499, 1)

    def test_a_non_positive_amount_is_refused(self, bank, payer):
        make_rule(max_amount=usd("100"))

        with pytest.raises(LimitConsumptionInvalid):
            consume(payer, "0")


class TestApprovalRouting:
    def test_an_approval_breach_asks_for_approval_and_consumes_nothing(self, bank, payer):
        roomy = make_rule(max_amount=usd("10000"))
        routed = make_rule(max_amount=usd("500"), on_breach="require_approval")
        consume(payer, "400")

        decision = consume(payer, "200")

        assert decision.requires_approval is True
        assert decision.consumed == []
        assert used(routed, payer.pk) == (40000, 1)
        assert used(roomy, payer.pk) == (40000, 1)

    def test_a_refusing_breach_wins_over_an_approval_breach(self, bank, payer):
        make_rule(max_amount=usd("500"), on_breach="require_approval")
        refusing = make_rule(max_amount=usd("500"))

        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "600")

        assert refused.value.extra["rule_id"] == refusing.pk

    def test_an_approved_item_can_be_recorded_beyond_the_limit(self, bank, payer):
        routed = make_rule(max_amount=usd("500"), on_breach="require_approval")
        consume(payer, "400")

        decision = consume(payer, "300", enforce=False)

        assert decision.requires_approval is False
        assert decision.consumed == [
            {"rule_id": routed.pk, "subject_id": payer.pk, "amount_minor": 30000}
        ]
        assert used(routed, payer.pk) == (70000, 2)
        view = selectors.limit_usage_today(account_id=payer.pk, business_date=BUSINESS_DATE)[0]
        assert view.remaining_amount == usd("0")


class TestRelease:
    def test_a_release_restores_the_headroom(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"), max_count=2)
        first = consume(payer, "700")
        consume(payer, "200")

        with transaction.atomic():
            services.limit_release(
                consumed=first.consumed,
                amount_currency="USD",
                business_date_of_original=BUSINESS_DATE,
            )
        consume(payer, "800")

        assert used(rule, payer.pk) == (100000, 2)

    def test_usage_never_goes_below_zero(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"))
        decision = consume(payer, "700")

        with transaction.atomic():
            for _ in range(2):
                services.limit_release(
                    consumed=decision.consumed,
                    amount_currency="USD",
                    business_date_of_original=BUSINESS_DATE,
                )

        assert used(rule, payer.pk) == (0, 0)

    def test_releasing_yesterdays_debit_leaves_today_alone(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"))
        yesterday = consume(payer, "700")
        consume(payer, "900", business_date=NEXT_DAY)

        with transaction.atomic():
            services.limit_release(
                consumed=yesterday.consumed,
                amount_currency="USD",
                business_date_of_original=BUSINESS_DATE,
            )

        assert used(rule, payer.pk) == (0, 0)
        assert used(rule, payer.pk, NEXT_DAY) == (90000, 1)

    def test_a_release_in_another_currency_releases_nothing(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"))
        decision = consume(payer, "700")

        with transaction.atomic():
            services.limit_release(
                consumed=decision.consumed,
                amount_currency="KWD",
                business_date_of_original=BUSINESS_DATE,
            )

        assert used(rule, payer.pk) == (70000, 1)

    def test_an_empty_release_is_a_no_op_without_a_query(self, bank, django_assert_num_queries):
        with transaction.atomic(), django_assert_num_queries(0):
            services.limit_release(
                consumed=[], amount_currency="USD", business_date_of_original=BUSINESS_DATE
            )

    @pytest.mark.parametrize(
        "consumed",
        [
            [{"rule_id": 1, "subject_id": 2}],
            [{"rule_id": "x", "subject_id": 2, "amount_minor": 5}],
            [{"rule_id": 1, "subject_id": 2, "amount_minor": 0}],
        ],
    )
    def test_a_malformed_release_is_refused(self, bank, consumed):
        with pytest.raises(LimitConsumptionInvalid), transaction.atomic():
            services.limit_release(
                consumed=consumed, amount_currency="USD", business_date_of_original=BUSINESS_DATE
            )


class TestBusinessDate:
    def test_the_next_business_date_starts_fresh(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"), max_count=1)
        consume(payer, "1000")

        consume(payer, "1000", business_date=NEXT_DAY)

        assert used(rule, payer.pk) == (100000, 1)
        assert used(rule, payer.pk, NEXT_DAY) == (100000, 1)

    def test_usage_is_keyed_by_the_date_passed_in_not_the_wall_clock(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"))
        long_ago = dt.date(2001, 1, 2)

        consume(payer, "10", business_date=long_ago)

        assert used(rule, payer.pk, long_ago) == (1000, 1)
        assert not LimitUsage.objects.filter(rule=rule).exclude(business_date=long_ago).exists()


class TestUsageToday:
    def test_lists_each_rule_with_its_limit_usage_and_headroom(self, bank, payer):
        rule = make_rule(max_amount=usd("1000"), max_count=4)
        consume(payer, "250")
        consume(payer, "100", business_date=NEXT_DAY)

        views = selectors.limit_usage_today(account_id=payer.pk, business_date=BUSINESS_DATE)

        assert len(views) == 1
        view = views[0]
        assert view.rule.pk == rule.pk
        assert view.in_force is True
        assert (view.limit_amount, view.used_amount, view.remaining_amount) == (
            usd("1000"),
            usd("250"),
            usd("750"),
        )
        assert (view.limit_count, view.used_count, view.remaining_count) == (4, 1, 3)

    def test_a_rule_the_override_covers_is_shown_as_not_in_force(self, bank, payer):
        covered = make_rule(txn_type="transfer", max_amount=usd("100"))
        partly = make_rule(max_amount=usd("100"))
        override, _ = services.limit_override_set(
            account_id=payer.pk,
            max_amount=usd("5000"),
            max_count=None,
            on_breach="refuse",
            channel="",
            txn_type="transfer",
            name="",
            actor=None,
            now=timezone.now(),
        )

        views = selectors.limit_usage_today(account_id=payer.pk, business_date=BUSINESS_DATE)

        in_force = {view.rule.pk: view.in_force for view in views}
        assert in_force == {override.pk: True, covered.pk: False, partly.pk: True}
        assert views[0].rule.pk == override.pk

    def test_a_customer_wide_rule_shows_the_customers_usage(self, bank, open_account):
        customer = CustomerFactory(home_branch=bank.branch)
        savings = open_account("SBA-USD", customer=customer)
        current = open_account("CAA-USD", customer=customer)
        make_rule(customer_id=customer.pk, max_amount=usd("1000"))
        consume(savings, "600")

        views = selectors.limit_usage_today(account_id=current.pk, business_date=BUSINESS_DATE)

        assert views[0].used_amount == usd("600")
        assert views[0].remaining_amount == usd("400")

    def test_an_office_account_has_no_limits(self, bank):
        make_rule(max_amount=usd("1"))

        views = selectors.limit_usage_today(
            account_id=bank.office_account("teller_cash").pk, business_date=BUSINESS_DATE
        )

        assert views == []


class TestRuleMaintenance:
    def test_create_records_who_and_when_in_the_history(self, bank, supervisor):
        now = timezone.now()

        rule = services.limit_rule_create(
            spec=LimitRuleSpec(currency="USD", max_amount=usd("100"), name="retail cap"),
            actor=supervisor,
            now=now,
        )

        assert (rule.created_by, rule.created_at, rule.max_amount_minor) == (supervisor, now, 10000)
        assert rule.history.get().history_user == supervisor

    @pytest.mark.parametrize(
        ("fields", "error"),
        [
            ({"max_amount": None, "max_count": None}, LimitRuleWithoutLimit),
            ({"max_amount": usd("-1")}, LimitRuleInvalid),
            ({"max_amount": usd("0")}, LimitRuleInvalid),
            ({"max_amount": usd("100000000000000")}, LimitRuleInvalid),
            ({"max_count": 0}, LimitRuleInvalid),
            ({"max_count": True}, LimitRuleInvalid),
            ({"channel": "atm"}, LimitRuleInvalid),
            ({"txn_type": "cash_deposit"}, LimitRuleInvalid),
            ({"on_breach": "warn"}, LimitRuleInvalid),
            ({"name": "x" * 101}, LimitRuleInvalid),
            ({"currency": "XXX"}, UnknownCurrency),
            ({"currency": "KWD"}, LimitCurrencyMismatch),
        ],
    )
    def test_a_bad_rule_is_refused_and_nothing_saved(self, bank, fields, error):
        spec = {"currency": "USD", "max_amount": usd("100"), **fields}
        before = LimitRule.objects.count()

        with pytest.raises(error):
            make_rule(**spec)

        assert LimitRule.objects.count() == before

    def test_more_than_one_scope_is_refused(self, bank, payer):
        with pytest.raises(LimitScopeAmbiguous) as refused:
            make_rule(account_id=payer.pk, customer_id=payer.customer_id, max_count=1)

        assert set(refused.value.errors) == {"account", "customer"}
        assert not LimitRule.objects.filter(account=payer).exists()

    def test_a_scope_that_does_not_exist_is_refused(self, bank):
        with pytest.raises(AccountNotFound):
            make_rule(account_id=999_999_999, max_count=1)
        with pytest.raises(CustomerNotFound):
            make_rule(customer_id=999_999_999, max_count=1)

    def test_office_accounts_and_products_cannot_be_limited(self, bank):
        with pytest.raises(LimitOfficeScope):
            make_rule(account_id=bank.office_account("teller_cash").pk, max_count=1)
        with pytest.raises(LimitOfficeScope):
            make_rule(product_id=bank.products["OAB-USD"].pk, max_count=1)

    def test_a_rule_in_another_currency_than_its_account_is_refused(self, bank, payer):
        with pytest.raises(LimitCurrencyMismatch):
            make_rule(account_id=payer.pk, currency="JPY", max_count=1)

    def test_raising_a_limit_keeps_todays_usage(self, bank, payer):
        rule = make_rule(max_amount=usd("500"))
        consume(payer, "400")

        services.limit_rule_update(
            rule_id=rule.pk,
            changes=LimitRuleChanges(max_amount=usd("1000")),
            actor=None,
            now=timezone.now(),
        )
        consume(payer, "600")

        assert used(rule, payer.pk) == (100000, 2)
        assert rule.history.count() == 2

    def test_an_update_that_leaves_no_limit_is_refused(self, bank):
        rule = make_rule(max_amount=usd("500"))

        with pytest.raises(LimitRuleWithoutLimit):
            services.limit_rule_update(
                rule_id=rule.pk,
                changes=LimitRuleChanges(max_amount=None),
                actor=None,
                now=timezone.now(),
            )

        rule.refresh_from_db()
        assert rule.max_amount_minor == 50000
        assert rule.history.count() == 1

    def test_updating_a_missing_rule_is_refused(self, bank):
        with pytest.raises(LimitRuleNotFound):
            services.limit_rule_update(
                rule_id=999_999, changes=LimitRuleChanges(), actor=None, now=timezone.now()
            )

    def test_setting_an_override_again_replaces_it_in_place(self, bank, payer, supervisor):
        first, created = services.limit_override_set(
            account_id=payer.pk,
            max_amount=usd("2000"),
            max_count=None,
            on_breach="refuse",
            channel="",
            txn_type="",
            name="",
            actor=supervisor,
            now=timezone.now(),
        )

        second, created_again = services.limit_override_set(
            account_id=payer.pk,
            max_amount=None,
            max_count=3,
            on_breach="require_approval",
            channel="",
            txn_type="transfer",
            name="three transfers",
            actor=supervisor,
            now=timezone.now(),
        )

        assert (created, created_again) == (True, False)
        assert second.pk == first.pk
        second.refresh_from_db()
        assert (second.max_amount_minor, second.max_count, second.txn_type) == (
            None,
            3,
            "transfer",
        )
        assert second.is_override and second.currency == "USD"
        assert second.history.count() == 2
