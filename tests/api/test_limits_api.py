"""The limits API: rules, the per-account override, an account's limits, and every bad input."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest
from django.db import transaction
from django.utils import timezone

import ledger.services
from banksim.api.exceptions import problem_for
from banksim.core.money import Money
from limits import services
from limits.errors import DailyLimitExceeded
from limits.models import LimitRule
from limits.services import LimitRuleSpec
from tests.api.accounts_support import assert_problem
from tests.factories import BUSINESS_DATE

pytestmark = pytest.mark.django_db

RULES = "/api/v1/limit-rules"


def rule_url(rule_id: int | str) -> str:
    return f"{RULES}/{rule_id}"


def override_url(account_number: str) -> str:
    return f"/api/v1/accounts/{account_number}/limit-override"


def limits_url(account_number: str) -> str:
    return f"/api/v1/accounts/{account_number}/limits"


def make_rule(**fields) -> LimitRule:
    fields.setdefault("currency", "USD")
    return services.limit_rule_create(spec=LimitRuleSpec(**fields), actor=None, now=timezone.now())


def consume(account, amount: str, business_date: dt.date = BUSINESS_DATE) -> services.LimitDecision:
    with transaction.atomic():
        return services.limit_consume(
            account_id=account.pk,
            amount=Money.parse(amount, account.currency),
            channel="teller",
            txn_type="transfer",
            business_date=business_date,
        )


@pytest.fixture
def supervisor_client(make_client, supervisor):
    return make_client(supervisor)


@pytest.fixture
def teller_client(make_client, teller):
    return make_client(teller)


@pytest.fixture
def auditor_client(make_client, auditor):
    return make_client(auditor)


@pytest.fixture
def payer(bank, open_account):
    return open_account("SBA-USD")


class TestLimitRuleCreate:
    def test_a_supervisor_creates_a_bank_wide_rule(self, bank, supervisor, supervisor_client):
        payload = {
            "name": "retail daily cap",
            "currency": "USD",
            "max_amount": "5000.00",
            "max_count": 20,
            "txn_type": "cash_withdrawal",
            "on_breach": "require_approval",
        }

        response = supervisor_client.post(RULES, payload, format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        rule = LimitRule.objects.get(pk=body["id"])
        assert body["scope"] == "bank"
        assert (body["account"], body["product"], body["customer"]) == (None, None, None)
        assert body["max_amount"] == "5000.00" and body["max_count"] == 20
        assert (body["channel"], body["txn_type"]) == ("", "cash_withdrawal")
        assert body["on_breach"] == "require_approval"
        assert body["is_override"] is False and body["is_active"] is True
        assert rule.max_amount_minor == 500000
        assert rule.created_by == supervisor
        assert rule.history.get().history_user == supervisor

    def test_scopes_are_named_by_their_public_identifiers(self, bank, payer, supervisor_client):
        customer = payer.customer
        scopes = {
            "account": payer.account_number,
            "product": "SBA-USD",
            "customer": customer.cif_id,
        }

        bodies = {
            name: supervisor_client.post(
                RULES, {name: value, "currency": "USD", "max_count": 3}, format="json"
            ).json()
            for name, value in scopes.items()
        }

        for name, value in scopes.items():
            assert bodies[name]["scope"] == name
            assert bodies[name][name] == value
        assert LimitRule.objects.get(pk=bodies["account"]["id"]).account_id == payer.pk
        assert LimitRule.objects.get(pk=bodies["customer"]["id"]).customer_id == customer.pk

    @pytest.mark.parametrize("role", ["teller", "auditor"])
    def test_only_a_supervisor_may_create(self, bank, make_client, request, role):
        client = make_client(request.getfixturevalue(role))
        before = LimitRule.objects.count()

        response = client.post(RULES, {"currency": "USD", "max_count": 1}, format="json")

        assert_problem(response, 403, "auth.forbidden")
        assert LimitRule.objects.count() == before

    def test_an_anonymous_caller_is_refused(self, bank, make_client):
        response = make_client(None).post(RULES, {"currency": "USD", "max_count": 1}, format="json")

        assert_problem(response, 401, "auth.not_authenticated")

    @pytest.mark.parametrize(
        ("fields", "status", "code", "field"),
        [
            ({"max_amount": "-5.00"}, 400, "validation_error", "max_amount"),
            ({"max_amount": "0.00"}, 400, "validation_error", "max_amount"),
            ({"max_amount": "0"}, 400, "validation_error", "max_amount"),
            ({"max_amount": 100}, 400, "validation_error", "max_amount"),
            ({"max_amount": "1e3"}, 400, "validation_error", "max_amount"),
            ({"max_amount": "1_000"}, 400, "validation_error", "max_amount"),
            ({"max_amount": "100.001"}, 400, "money.invalid_amount", "max_amount"),
            ({"max_amount": "100000000000000.00"}, 400, "limits.rule_invalid", "max_amount"),
            ({"max_count": 0}, 400, "validation_error", "max_count"),
            ({"max_count": -3}, 400, "validation_error", "max_count"),
            ({"max_count": "5"}, 400, "validation_error", "max_count"),
            ({"max_count": True}, 400, "validation_error", "max_count"),
            ({"max_count": 10_000_000}, 400, "validation_error", "max_count"),
            ({"max_amount": None}, 400, "limits.rule_without_limit", "max_amount"),
            ({"max_amount": None, "max_count": None}, 400, "limits.rule_without_limit", None),
            ({"channel": "atm"}, 400, "validation_error", "channel"),
            ({"txn_type": "cash_deposit"}, 400, "validation_error", "txn_type"),
            ({"txn_type": "refund"}, 400, "validation_error", "txn_type"),
            ({"on_breach": "warn"}, 400, "validation_error", "on_breach"),
            ({"currency": "usd"}, 400, "validation_error", "currency"),
            ({"currency": "XXX"}, 400, "validation_error", "currency"),
            ({"currency": None}, 400, "validation_error", "currency"),
            ({"account": "999999999999"}, 404, "account.not_found", None),
            ({"account": "12345"}, 400, "validation_error", "account"),
            ({"product": "NOPE-USD"}, 404, "product.not_found", None),
            ({"customer": "C999999999"}, 404, "customer.not_found", None),
            ({"customer": "someone"}, 400, "validation_error", "customer"),
            ({"product": "SBA-USD", "customer": "C999999999"}, 400, "limits.scope_ambiguous", None),
            ({"product": "SBA-JPY"}, 400, "limits.currency_mismatch", "currency"),
            ({"product": "OAB-USD"}, 422, "limits.office_scope", None),
            ({"is_override": True}, 400, "validation_error", "is_override"),
            ({"scope": "account"}, 400, "validation_error", "scope"),
            ({"id": 5}, 400, "validation_error", "id"),
            ({"colour": "red"}, 400, "validation_error", "colour"),
            ({"name": "x" * 101}, 400, "validation_error", "name"),
            ({"name": "line\nbreak"}, 400, "validation_error", "name"),
            ({"is_active": "yes"}, 400, "validation_error", "is_active"),
        ],
    )
    def test_a_bad_rule_is_a_clear_error_and_nothing_is_saved(
        self, bank, supervisor_client, fields, status, code, field
    ):
        payload = {"currency": "USD", "max_amount": "1000.00", **fields}
        before = LimitRule.objects.count()

        response = supervisor_client.post(RULES, payload, format="json")

        assert_problem(response, status, code, field=field)
        assert LimitRule.objects.count() == before

    def test_more_than_one_scope_names_each_of_them(self, bank, payer, supervisor_client):
        payload = {
            "account": payer.account_number,
            "customer": payer.customer.cif_id,
            "currency": "USD",
            "max_count": 1,
        }

        response = supervisor_client.post(RULES, payload, format="json")

        body = assert_problem(response, 400, "limits.scope_ambiguous")
        assert {e["field"] for e in body["errors"]} == {"account", "customer"}
        assert not LimitRule.objects.filter(account=payer).exists()

    def test_an_office_account_cannot_be_limited(self, bank, supervisor_client):
        till = bank.office_account("teller_cash", "USD")

        response = supervisor_client.post(
            RULES,
            {"account": till.account_number, "currency": "USD", "max_count": 1},
            format="json",
        )

        assert_problem(response, 422, "limits.office_scope")
        assert not LimitRule.objects.filter(account=till).exists()

    def test_a_rule_in_another_currency_than_its_account_is_refused(
        self, bank, payer, supervisor_client
    ):
        response = supervisor_client.post(
            RULES,
            {"account": payer.account_number, "currency": "KWD", "max_amount": "1.000"},
            format="json",
        )

        assert_problem(response, 400, "limits.currency_mismatch", field="currency")
        assert not LimitRule.objects.filter(account=payer).exists()

    def test_a_float_in_the_body_is_refused_as_malformed(self, bank, supervisor_client):
        before = LimitRule.objects.count()

        response = supervisor_client.post(
            RULES,
            data=b'{"currency": "USD", "max_amount": 100.5}',
            content_type="application/json",
        )

        assert_problem(response, 400, "request.malformed")
        assert LimitRule.objects.count() == before

    def test_a_body_that_is_not_an_object_is_refused(self, bank, supervisor_client):
        response = supervisor_client.post(RULES, ["USD"], format="json")

        assert_problem(response, 400, "validation_error")


class TestLimitRuleRead:
    def test_every_role_lists_rules_with_filters_and_paging(self, bank, payer, auditor_client):
        usd = make_rule(max_amount=Money.parse("100", "USD"))
        account_rule = make_rule(account_id=payer.pk, max_count=2)
        kwd = make_rule(currency="KWD", max_count=4)
        off = make_rule(max_count=9, is_active=False)

        by_currency = auditor_client.get(RULES, {"currency": "KWD"}).json()
        active = auditor_client.get(RULES, {"is_active": "true", "limit": 100}).json()
        for_account = auditor_client.get(RULES, {"account": payer.account_number}).json()
        paged = auditor_client.get(RULES, {"limit": 1, "offset": 1}).json()

        assert [r["id"] for r in by_currency["results"]] == [kwd.pk]
        active_ids = {r["id"] for r in active["results"]}
        assert {usd.pk, account_rule.pk, kwd.pk} <= active_ids and off.pk not in active_ids
        assert [r["id"] for r in for_account["results"]] == [account_rule.pk]
        assert for_account["results"][0]["account"] == payer.account_number
        assert (paged["limit"], paged["offset"], len(paged["results"])) == (1, 1, 1)
        assert paged["count"] >= 4

    def test_a_rule_reads_with_its_amount_as_a_string(self, bank, teller_client):
        rule = make_rule(currency="KWD", max_amount=Money.parse("12.345", "KWD"))

        response = teller_client.get(rule_url(rule.pk))

        assert response.status_code == 200
        assert response.json()["max_amount"] == "12.345"
        assert response.json()["max_count"] is None

    @pytest.mark.parametrize("rule_id", ["999999", "99999999999999999999999"])
    def test_a_missing_rule_is_not_found(self, bank, teller_client, rule_id):
        response = teller_client.get(rule_url(rule_id))

        assert_problem(response, 404, "limits.rule_not_found")

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"is_active": "yes"}, "is_active"),
            ({"currency": "usd"}, "currency"),
            ({"account": "12"}, "account"),
            ({"limit": "0"}, "limit"),
            ({"limit": "1e2"}, "limit"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_a_bad_filter_is_a_clear_error(self, bank, teller_client, params, field):
        response = teller_client.get(RULES, params)

        assert_problem(response, 400, "validation_error", field=field)

    def test_an_unknown_account_filter_is_not_found(self, bank, teller_client):
        response = teller_client.get(RULES, {"account": "999999999999"})

        assert_problem(response, 404, "account.not_found")


class TestLimitRuleUpdate:
    def test_a_supervisor_raises_a_limit_and_the_history_keeps_both(
        self, bank, supervisor, supervisor_client
    ):
        rule = make_rule(max_amount=Money.parse("100", "USD"))

        response = supervisor_client.patch(
            rule_url(rule.pk), {"max_amount": "250.50", "name": "raised"}, format="json"
        )

        assert response.status_code == 200, response.content
        assert response.json()["max_amount"] == "250.50"
        rule.refresh_from_db()
        assert (rule.max_amount_minor, rule.name) == (25050, "raised")
        assert rule.history.count() == 2
        assert rule.history.first().history_user == supervisor

    def test_a_rule_is_switched_off_not_deleted(self, bank, payer, supervisor_client):
        rule = make_rule(max_amount=Money.parse("1", "USD"))

        response = supervisor_client.patch(rule_url(rule.pk), {"is_active": False}, format="json")
        decision = consume(payer, "50")

        assert response.json()["is_active"] is False
        assert decision.consumed == []
        assert LimitRule.objects.filter(pk=rule.pk, is_active=False).exists()

    def test_one_of_the_two_limits_can_be_dropped(self, bank, supervisor_client):
        rule = make_rule(max_amount=Money.parse("100", "USD"), max_count=3)

        response = supervisor_client.patch(rule_url(rule.pk), {"max_amount": None}, format="json")

        assert response.status_code == 200
        rule.refresh_from_db()
        assert (rule.max_amount_minor, rule.max_count) == (None, 3)

    @pytest.mark.parametrize(
        ("payload", "status", "code", "field"),
        [
            ({}, 400, "validation_error", ""),
            ({"currency": "KWD"}, 400, "validation_error", "currency"),
            ({"channel": "api"}, 400, "validation_error", "channel"),
            ({"account": "000100000001"}, 400, "validation_error", "account"),
            ({"is_override": True}, 400, "validation_error", "is_override"),
            ({"max_amount": "1.001"}, 400, "money.invalid_amount", "max_amount"),
            ({"max_amount": "-1"}, 400, "validation_error", "max_amount"),
            ({"max_count": 0}, 400, "validation_error", "max_count"),
            ({"max_amount": None}, 400, "limits.rule_without_limit", "max_amount"),
            ({"on_breach": "ignore"}, 400, "validation_error", "on_breach"),
            ({"is_active": 0}, 400, "validation_error", "is_active"),
        ],
    )
    def test_a_bad_change_is_a_clear_error_and_nothing_changes(
        self, bank, supervisor_client, payload, status, code, field
    ):
        rule = make_rule(max_amount=Money.parse("100", "USD"))

        response = supervisor_client.patch(rule_url(rule.pk), payload, format="json")

        assert_problem(response, status, code, field=field)
        rule.refresh_from_db()
        assert (rule.max_amount_minor, rule.max_count, rule.is_active) == (10000, None, True)
        assert rule.history.count() == 1

    def test_a_teller_may_not_change_a_rule(self, bank, teller_client):
        rule = make_rule(max_amount=Money.parse("100", "USD"))

        response = teller_client.patch(rule_url(rule.pk), {"max_count": 1}, format="json")

        assert_problem(response, 403, "auth.forbidden")
        assert LimitRule.objects.get(pk=rule.pk).max_count is None

    def test_changing_a_missing_rule_is_not_found(self, bank, supervisor_client):
        response = supervisor_client.patch(rule_url(999_999), {"max_count": 1}, format="json")

        assert_problem(response, 404, "limits.rule_not_found")

    def test_delete_is_not_an_operation(self, bank, supervisor_client):
        rule = make_rule(max_count=1)

        response = supervisor_client.delete(rule_url(rule.pk))

        assert_problem(response, 405, "request.method_not_allowed")
        assert LimitRule.objects.filter(pk=rule.pk).exists()


class TestAccountLimitOverride:
    def test_a_supervisor_sets_then_replaces_the_override(self, bank, payer, supervisor_client):
        first = supervisor_client.put(
            override_url(payer.account_number),
            {"max_amount": "20000.00", "name": "house purchase"},
            format="json",
        )
        second = supervisor_client.put(
            override_url(payer.account_number),
            {"max_count": 2, "txn_type": "transfer"},
            format="json",
        )

        assert first.status_code == 201, first.content
        assert second.status_code == 200, second.content
        assert first.json()["id"] == second.json()["id"]
        body = second.json()
        assert body["is_override"] is True and body["scope"] == "account"
        assert body["account"] == payer.account_number and body["currency"] == "USD"
        # PUT replaces the whole override: what the second call did not send is back to default.
        assert (body["max_amount"], body["max_count"], body["name"]) == (None, 2, "")
        rule = LimitRule.objects.get(pk=body["id"])
        assert rule.history.count() == 2

    def test_the_override_wins_over_a_tighter_rule(self, bank, payer, supervisor_client):
        make_rule(max_amount=Money.parse("100", "USD"))
        supervisor_client.put(
            override_url(payer.account_number), {"max_amount": "5000.00"}, format="json"
        )

        consume(payer, "4000")

        limits = supervisor_client.get(limits_url(payer.account_number)).json()["limits"]
        assert [(row["is_override"], row["in_force"]) for row in limits] == [
            (True, True),
            (False, False),
        ]
        assert limits[0]["used_amount"] == "4000.00"

    @pytest.mark.parametrize(
        ("payload", "status", "code", "field"),
        [
            ({}, 400, "limits.rule_without_limit", None),
            ({"max_amount": "0"}, 400, "validation_error", "max_amount"),
            ({"max_amount": "10.001"}, 400, "money.invalid_amount", "max_amount"),
            ({"max_count": 2.5}, 400, "request.malformed", None),
            ({"max_count": 1, "channel": "atm"}, 400, "validation_error", "channel"),
            ({"max_count": 1, "txn_type": "fee"}, 400, "validation_error", "txn_type"),
            ({"max_count": 1, "currency": "USD"}, 400, "validation_error", "currency"),
            ({"max_count": 1, "account": "1"}, 400, "validation_error", "account"),
            ({"max_count": 1, "is_override": False}, 400, "validation_error", "is_override"),
        ],
    )
    def test_a_bad_override_is_a_clear_error_and_nothing_is_saved(
        self, bank, payer, supervisor_client, payload, status, code, field
    ):
        if code == "request.malformed":
            response = supervisor_client.put(
                override_url(payer.account_number),
                data=b'{"max_count": 2.5}',
                content_type="application/json",
            )
        else:
            response = supervisor_client.put(
                override_url(payer.account_number), payload, format="json"
            )

        assert_problem(response, status, code, field=field)
        assert not LimitRule.objects.filter(account=payer).exists()

    def test_an_override_follows_the_accounts_currency_grid(
        self, bank, open_account, supervisor_client
    ):
        yen = open_account("SBA-JPY")

        refused = supervisor_client.put(
            override_url(yen.account_number), {"max_amount": "100.5"}, format="json"
        )
        accepted = supervisor_client.put(
            override_url(yen.account_number), {"max_amount": "100"}, format="json"
        )

        assert_problem(refused, 400, "money.invalid_amount", field="max_amount")
        assert accepted.status_code == 201
        assert (accepted.json()["currency"], accepted.json()["max_amount"]) == ("JPY", "100")

    def test_an_office_account_has_no_override(self, bank, supervisor_client):
        till = bank.office_account("teller_cash", "USD")

        response = supervisor_client.put(
            override_url(till.account_number), {"max_count": 1}, format="json"
        )

        assert_problem(response, 422, "limits.office_scope")
        assert not LimitRule.objects.filter(account=till).exists()

    @pytest.mark.parametrize("number", ["999999999999", "abc"])
    def test_an_unknown_account_is_not_found(self, bank, supervisor_client, number):
        response = supervisor_client.put(override_url(number), {"max_count": 1}, format="json")

        assert_problem(response, 404, "account.not_found")

    def test_a_teller_may_not_set_an_override(self, bank, payer, teller_client):
        response = teller_client.put(
            override_url(payer.account_number), {"max_count": 1}, format="json"
        )

        assert_problem(response, 403, "auth.forbidden")
        assert not LimitRule.objects.filter(account=payer).exists()


class TestAccountLimits:
    def test_shows_each_rule_with_its_limit_usage_and_headroom_today(
        self, bank, payer, auditor_client
    ):
        bank_rule = make_rule(max_amount=Money.parse("1000", "USD"), max_count=5)
        product_rule = make_rule(product_id=payer.product_id, max_count=3, channel="api")
        consume(payer, "250.25")
        consume(payer, "700", business_date=BUSINESS_DATE - dt.timedelta(days=1))

        response = auditor_client.get(limits_url(payer.account_number))

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["account_number"] == payer.account_number
        assert body["currency"] == "USD"
        assert body["business_date"] == BUSINESS_DATE.isoformat()
        rows = {row["rule_id"]: row for row in body["limits"]}
        assert rows[bank_rule.pk] == {
            "rule_id": bank_rule.pk,
            "name": "",
            "scope": "bank",
            "channel": "",
            "txn_type": "",
            "on_breach": "refuse",
            "is_override": False,
            "in_force": True,
            "limit_amount": "1000.00",
            "used_amount": "250.25",
            "remaining_amount": "749.75",
            "limit_count": 5,
            "used_count": 1,
            "remaining_count": 4,
        }
        assert rows[product_rule.pk]["scope"] == "product"
        assert rows[product_rule.pk]["limit_amount"] is None
        assert rows[product_rule.pk]["remaining_amount"] is None
        assert rows[product_rule.pk]["used_count"] == 0

    def test_an_account_without_rules_has_an_empty_list(self, bank, payer, teller_client):
        response = teller_client.get(limits_url(payer.account_number))

        assert response.status_code == 200
        assert response.json()["limits"] == []

    def test_an_office_account_is_never_limited(self, bank, teller_client):
        make_rule(max_count=1)

        response = teller_client.get(limits_url(bank.office_account("teller_cash").account_number))

        assert response.json()["limits"] == []

    @pytest.mark.parametrize("number", ["999999999999", "12", "０００１"])
    def test_an_unknown_account_is_not_found(self, bank, teller_client, number):
        response = teller_client.get(limits_url(number))

        assert_problem(response, 404, "account.not_found")

    def test_an_anonymous_caller_is_refused(self, bank, payer, make_client):
        response = make_client(None).get(limits_url(payer.account_number))

        assert_problem(response, 401, "auth.not_authenticated")


class TestBreachProblem:
    def test_a_breach_is_a_422_problem_with_limit_used_and_remaining(self, bank, payer):
        make_rule(max_amount=Money.parse("1000", "USD"), max_count=3)
        consume(payer, "800")

        with pytest.raises(DailyLimitExceeded) as refused:
            consume(payer, "300")
        body, _ = problem_for(refused.value)

        assert body["status"] == 422
        assert body["code"] == "limits.daily_limit_exceeded"
        assert body["type"].endswith("limits.daily_limit_exceeded")
        assert (body["limit_amount"], body["used_amount"], body["remaining_amount"]) == (
            "1000.00",
            "800.00",
            "200.00",
        )
        assert (body["limit_count"], body["used_count"], body["remaining_count"]) == (3, 1, 2)
        assert body["currency"] == "USD" and body["requested_amount"] == "300.00"
        assert "200.00" in body["detail"]


_WIRED = "limit_consume" in inspect.getsource(ledger.services)


@pytest.mark.skipif(not _WIRED, reason="movement_post does not call limit_consume yet")
class TestTransferBreach:
    def test_a_transfer_past_the_limit_answers_the_limits_problem_and_posts_nothing(
        self, bank, funded_account, open_account, teller, teller_client
    ):
        from ledger.models import AccountBalance
        from tests.api.ledger_support import post_json, seat

        seat(teller, bank.branch)
        payer = funded_account("5000.00")
        payee = open_account("SBA-USD")
        make_rule(max_amount=Money.parse("1000", "USD"))
        transfer = {
            "debit_account": payer.account_number,
            "credit_account": payee.account_number,
            "currency": "USD",
        }

        ok = post_json(teller_client, "/api/v1/transfers", {**transfer, "amount": "800.00"})
        refused = post_json(teller_client, "/api/v1/transfers", {**transfer, "amount": "300.00"})

        assert ok.status_code == 201, ok.content
        body = assert_problem(refused, 422, "limits.daily_limit_exceeded")
        assert (body["used_amount"], body["remaining_amount"]) == ("800.00", "200.00")
        limits = teller_client.get(limits_url(payer.account_number)).json()["limits"]
        assert limits[0]["used_amount"] == "800.00"
        assert AccountBalance.objects.get(account=payee).ledger_minor == 80000
