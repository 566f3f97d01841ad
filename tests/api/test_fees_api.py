"""The fee API: rules (read by all roles, written by supervisors), waivers and the quote, with
every bad input answered by a clear problem and nothing saved."""

import pytest

from fees.models import FeeRule, FeeUsage, FeeWaiver
from tests.api.accounts_support import assert_problem
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/fee-rules"
WAIVERS = "/api/v1/fee-waivers"
QUOTE = "/api/v1/fee-quote"


@pytest.fixture
def supervisor_client(make_client, supervisor):
    return make_client(supervisor)


@pytest.fixture
def teller_client(make_client, teller):
    return make_client(teller)


@pytest.fixture
def auditor_client(make_client, auditor):
    return make_client(auditor)


def rule_payload(bank, **overrides):
    payload = {
        "name": "Teller transfer fee",
        "event": "transfer_out",
        "currency": "USD",
        "calc_type": "percent",
        "rate_percent": "0.5",
        "min_fee": "1.00",
        "max_fee": "10.00",
        "tax_rate_percent": "15",
        "income_account": bank.office_account("fee_income").account_number,
        "tax_account": bank.office_account("tax_payable").account_number,
        "channel": "teller",
        "effective_from": "2026-11-30",
    }
    payload.update(overrides)
    return payload


def quote(client, payer, amount="100.00", **params):
    query = {
        "event": "transfer_out",
        "account": payer.account_number,
        "amount": amount,
        "currency": payer.currency,
        "channel": "teller",
        **params,
    }
    return client.get(QUOTE, query)


class TestFeeRuleCreate:
    def test_a_supervisor_creates_a_rule_and_reads_it_back_as_strings(
        self, bank, supervisor_client
    ):
        response = supervisor_client.post(RULES, rule_payload(bank), format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        rule = FeeRule.objects.get(pk=body["id"])
        assert body["version"] == 1 and rule.version == 1
        assert body["rate_percent"] == "0.5"
        assert (body["min_fee"], body["max_fee"]) == ("1.00", "10.00")
        assert body["flat_fee"] == "0.00"
        assert body["tax_rate_percent"] == "15"
        assert body["income_account"] == bank.office_account("fee_income").account_number
        assert body["product"] is None and body["segment"] == "" and body["channel"] == "teller"
        assert body["effective_to"] is None and body["priority"] == 100
        assert (rule.min_fee_minor, rule.max_fee_minor) == (100, 1000)

    def test_a_tiered_rule_round_trips_its_tiers(self, bank, supervisor_client):
        tiers = [
            {"up_to": "1000.00", "flat_fee": "1.00", "rate_percent": "0"},
            {"up_to": None, "flat_fee": "0.00", "rate_percent": "0.1"},
        ]
        payload = rule_payload(
            bank, calc_type="tiered", rate_percent="0", tiers=tiers, product="SBA-USD"
        )

        response = supervisor_client.post(RULES, payload, format="json")

        assert response.status_code == 201, response.content
        assert response.json()["tiers"] == tiers
        assert response.json()["product"] == "SBA-USD"

    def test_a_teller_may_not_create_a_rule(self, bank, teller_client):
        response = teller_client.post(RULES, rule_payload(bank), format="json")

        assert_problem(response, 403, "auth.forbidden")
        assert not FeeRule.objects.exists()

    @pytest.mark.parametrize(
        ("overrides", "status", "code", "field"),
        [
            ({"rate_percent": "-0.5"}, 400, "fees.negative_rate", "rate_percent"),
            ({"tax_rate_percent": "-1"}, 400, "fees.negative_rate", "tax_rate_percent"),
            ({"rate_percent": "150"}, 400, "fees.rate_too_high", "rate_percent"),
            ({"rate_percent": "1e2"}, 400, "fees.invalid_rate", "rate_percent"),
            ({"event": "teleport"}, 400, "fees.unknown_event", "event"),
            ({"min_fee": "20.00", "max_fee": "5.00"}, 400, "fees.invalid_caps", "min_fee"),
            ({"min_fee": "-1.00"}, 400, "fees.negative_amount", "min_fee"),
            ({"min_fee": "1.001"}, 400, "money.invalid_amount", "min_fee"),
            ({"flat_fee": "1.00"}, 400, "fees.invalid_calculation", "flat_fee"),
            ({"calc_type": "tiered", "rate_percent": "0"}, 400, "fees.invalid_tiers", "tiers"),
            (
                {"calc_type": "tiered", "rate_percent": "0", "tiers": [{"up_to": "5.00"}]},
                400,
                "fees.invalid_tiers",
                "tiers[0].up_to",
            ),
            ({"tiers": "cheap"}, 400, "fees.invalid_tiers", "tiers"),
            ({"effective_to": "2026-11-30"}, 400, "fees.invalid_period", "effective_to"),
            ({"tax_account": None}, 400, "fees.tax_account_required", "tax_account"),
            ({"product": "SBA-JPY"}, 400, "fees.invalid_scope", "product"),
            ({"product": "NOPE"}, 404, "product.not_found", None),
            ({"income_account": "999999999999"}, 404, "account.not_found", None),
            ({"channel": "fax"}, 400, "validation_error", "channel"),
            ({"calc_type": "marginal"}, 400, "validation_error", "calc_type"),
            ({"currency": "usd"}, 400, "validation_error", "currency"),
            ({"priority": "5"}, 400, "validation_error", "priority"),
            ({"effective_from": "20261130"}, 400, "validation_error", "effective_from"),
            ({"rate_percent": 0}, 400, "validation_error", "rate_percent"),
            ({"version": 7}, 400, "validation_error", "version"),
            ({"id": 7}, 400, "validation_error", "id"),
        ],
    )
    def test_bad_input_is_a_clear_problem_and_saves_nothing(
        self, bank, supervisor_client, overrides, status, code, field
    ):
        response = supervisor_client.post(RULES, rule_payload(bank, **overrides), format="json")

        assert_problem(response, status, code, field)
        assert not FeeRule.objects.exists()

    def test_a_gl_account_that_is_a_customer_account_is_refused(
        self, bank, supervisor_client, open_account
    ):
        customer_account = open_account()
        payload = rule_payload(bank, income_account=customer_account.account_number)

        response = supervisor_client.post(RULES, payload, format="json")

        assert_problem(response, 400, "fees.invalid_gl_account", "income_account")
        assert not FeeRule.objects.exists()

    def test_an_overlapping_period_for_the_same_scope_is_a_conflict(self, bank, supervisor_client):
        first = supervisor_client.post(RULES, rule_payload(bank), format="json").json()

        response = supervisor_client.post(
            RULES, rule_payload(bank, effective_from="2026-12-15"), format="json"
        )

        body = assert_problem(response, 409, "fees.overlapping_rule", "effective_from")
        assert body["conflicting_rule"] == first["id"]
        assert FeeRule.objects.count() == 1

    def test_a_float_rate_is_refused_by_the_parser(self, bank, supervisor_client):
        response = supervisor_client.post(
            RULES,
            data=b'{"name": "x", "rate_percent": 0.5}',
            content_type="application/json",
        )

        assert_problem(response, 400, "request.malformed")
        assert not FeeRule.objects.exists()


class TestFeeRuleReadAndUpdate:
    @pytest.fixture
    def rule_id(self, bank, supervisor_client):
        return supervisor_client.post(RULES, rule_payload(bank), format="json").json()["id"]

    def test_every_role_can_list_and_read_rules(self, bank, rule_id, auditor_client, teller_client):
        listed = auditor_client.get(RULES, {"event": "transfer_out", "in_force_on": "2026-11-30"})
        read = teller_client.get(f"{RULES}/{rule_id}")

        assert listed.status_code == 200 and read.status_code == 200
        assert [r["id"] for r in listed.json()["results"]] == [rule_id]
        assert listed.json()["count"] == 1
        assert read.json()["id"] == rule_id

    def test_the_list_filters_by_date_in_force(self, bank, rule_id, auditor_client):
        response = auditor_client.get(RULES, {"in_force_on": "2026-11-29"})

        assert response.json()["results"] == []

    def test_a_patch_bumps_the_version(self, bank, rule_id, supervisor_client):
        response = supervisor_client.patch(
            f"{RULES}/{rule_id}", {"rate_percent": "0.75", "max_fee": None}, format="json"
        )

        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["version"], body["rate_percent"], body["max_fee"]) == (2, "0.75", None)
        assert FeeRule.objects.get(pk=rule_id).history.count() == 2

    @pytest.mark.parametrize(
        ("payload", "code", "field"),
        [
            ({"rate_percent": "-1"}, "fees.negative_rate", "rate_percent"),
            ({"min_fee": "50.00"}, "fees.invalid_caps", "min_fee"),
            ({"event": "cash_withdrawal"}, "fees.immutable_field", "event"),
            ({}, "validation_error", None),
            ({"status": "x"}, "validation_error", "status"),
        ],
    )
    def test_a_bad_patch_changes_nothing(
        self, bank, rule_id, supervisor_client, payload, code, field
    ):
        response = supervisor_client.patch(f"{RULES}/{rule_id}", payload, format="json")

        assert_problem(response, 400, code, field)
        rule = FeeRule.objects.get(pk=rule_id)
        assert (rule.version, rule.rate_percent, rule.min_fee_minor) == (1, 0.5, 100)

    def test_a_teller_may_not_patch(self, bank, rule_id, teller_client):
        response = teller_client.patch(f"{RULES}/{rule_id}", {"name": "x"}, format="json")

        assert_problem(response, 403, "auth.forbidden")

    def test_an_unknown_rule_is_not_found(self, bank, auditor_client, supervisor_client):
        assert_problem(auditor_client.get(f"{RULES}/999999"), 404, "fees.rule_not_found")
        assert_problem(
            supervisor_client.patch(f"{RULES}/999999", {"name": "x"}, format="json"),
            404,
            "fees.rule_not_found",
        )


class TestFeeWaivers:
    def test_a_supervisor_waives_an_account_until_a_date(
        self, bank, supervisor_client, open_account
    ):
        account = open_account()

        response = supervisor_client.post(
            WAIVERS,
            {
                "account": account.account_number,
                "reason": "complaint 42",
                "expires_on": "2027-01-01",
            },
            format="json",
        )

        assert response.status_code == 201, response.content
        body = response.json()
        waiver = FeeWaiver.objects.get(pk=body["id"])
        assert (body["account"], body["customer"], body["event"]) == (
            account.account_number,
            None,
            "",
        )
        assert body["valid_from"] == "2026-11-30" and waiver.history.count() == 1

    def test_a_customer_waiver_is_listed_on_each_of_their_accounts(
        self, bank, supervisor_client, auditor_client, open_account
    ):
        account = open_account()
        supervisor_client.post(
            WAIVERS,
            {
                "customer": account.customer.cif_id,
                "event": "cash_withdrawal",
                "reason": "staff",
                "expires_on": "2027-01-01",
            },
            format="json",
        )

        response = auditor_client.get(WAIVERS, {"account": account.account_number})

        assert [w["customer"] for w in response.json()] == [account.customer.cif_id]

    @pytest.mark.parametrize(
        ("payload", "status", "code", "field"),
        [
            ({"event": "teleport"}, 400, "fees.unknown_event", "event"),
            ({"expires_on": "2026-11-30"}, 400, "fees.invalid_period", "expires_on"),
            ({"customer": "C000000000"}, 404, "customer.not_found", None),
            ({"account": None}, 400, "validation_error", "account"),
            ({"reason": ""}, 400, "validation_error", "reason"),
        ],
    )
    def test_a_bad_waiver_is_refused_and_nothing_saved(
        self, bank, supervisor_client, open_account, payload, status, code, field
    ):
        account = open_account()
        body = {"account": account.account_number, "reason": "goodwill", "expires_on": "2027-01-01"}
        body.update(payload)

        response = supervisor_client.post(WAIVERS, body, format="json")

        assert_problem(response, status, code, field)
        assert not FeeWaiver.objects.exists()

    def test_a_waiver_for_both_account_and_customer_is_refused(
        self, bank, supervisor_client, open_account
    ):
        account = open_account()

        response = supervisor_client.post(
            WAIVERS,
            {
                "account": account.account_number,
                "customer": account.customer.cif_id,
                "reason": "goodwill",
                "expires_on": "2027-01-01",
            },
            format="json",
        )

        assert_problem(response, 400, "fees.invalid_waiver")
        assert not FeeWaiver.objects.exists()

    def test_a_teller_may_not_waive(self, bank, teller_client, open_account):
        account = open_account()

        response = teller_client.post(
            WAIVERS,
            {"account": account.account_number, "reason": "x", "expires_on": "2027-01-01"},
            format="json",
        )

        assert_problem(response, 403, "auth.forbidden")


class TestFeeQuote:
    def test_quotes_fee_tax_and_total_debit_with_the_rule_that_produced_them(
        self, bank, supervisor_client, auditor_client, open_account
    ):
        rule = supervisor_client.post(RULES, rule_payload(bank), format="json").json()
        payer = open_account()

        response = quote(auditor_client, payer, "12.50")

        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["fee"], body["tax"], body["total_debit"]) == ("1.00", "0.15", "13.65")
        assert body["currency"] == "USD" and body["amount"] == "12.50"
        [charge] = body["charges"]
        assert (charge["rule"], charge["version"]) == (rule["id"], 1)
        assert charge["inputs"]["calc_type"] == "percent"
        assert charge["inputs"]["capped"] == "min"
        assert charge["inputs"]["rate_percent"] == "0.5"

    def test_a_quote_with_no_rule_costs_nothing(self, bank, teller_client, open_account):
        payer = open_account()

        body = quote(teller_client, payer).json()

        assert (body["fee"], body["tax"], body["total_debit"], body["charges"]) == (
            "0.00",
            "0.00",
            "100.00",
            [],
        )

    def test_a_deposit_quote_does_not_count_the_amount_as_a_debit(
        self, bank, fee_rule, teller_client, open_account
    ):
        fee_rule(event="cash_deposit", flat_fee="0.50")
        payer = open_account()

        body = quote(teller_client, payer, event="cash_deposit").json()

        assert body["total_debit"] == "0.50"

    def test_a_quote_counts_no_free_use(self, bank, fee_rule, teller_client, open_account):
        fee_rule(free_uses=1)
        payer = open_account()

        bodies = [quote(teller_client, payer).json() for _ in range(2)]

        assert [b["charges"][0]["free_use"] for b in bodies] == [True, True]
        assert not FeeUsage.objects.exists()

    def test_a_quote_reports_a_waiver(self, bank, fee_rule, supervisor_client, open_account):
        fee_rule()
        payer = open_account()
        waiver = supervisor_client.post(
            WAIVERS,
            {"account": payer.account_number, "reason": "goodwill", "expires_on": "2027-01-01"},
            format="json",
        ).json()

        charge = quote(supervisor_client, payer).json()["charges"][0]

        assert (charge["fee"], charge["waived_by"]) == ("0.00", waiver["id"])

    def test_a_segment_rule_applies_to_that_segment(
        self, bank, fee_rule, teller_client, open_account
    ):
        fee_rule(flat_fee="2.00")
        fee_rule(flat_fee="0.25", segment="premium")
        premium = open_account(customer=CustomerFactory(home_branch=bank.branch, segment="premium"))

        assert quote(teller_client, premium).json()["fee"] == "0.25"

    @pytest.mark.parametrize(
        ("params", "status", "code", "field"),
        [
            ({"event": "teleport"}, 400, "fees.unknown_event", "event"),
            ({"currency": "JPY", "amount": "100"}, 400, "ledger.currency_mismatch", "currency"),
            ({"amount": "12.505"}, 400, "money.invalid_amount", "amount"),
            ({"amount": "-1.00"}, 400, "fees.negative_amount", None),
            ({"amount": "1e3"}, 400, "validation_error", "amount"),
            ({"account": "999999999999"}, 404, "account.not_found", None),
            ({"account": "12"}, 400, "validation_error", "account"),
            ({"channel": "fax"}, 400, "validation_error", "channel"),
            ({"currency": "XXX"}, 400, "validation_error", "currency"),
            ({"extra": "1"}, 400, "validation_error", "extra"),
        ],
    )
    def test_bad_quote_input_is_a_clear_problem(
        self, bank, teller_client, open_account, params, status, code, field
    ):
        payer = open_account()

        response = quote(teller_client, payer, **params)

        assert_problem(response, status, code, field)

    def test_office_accounts_are_not_quoted(self, bank, teller_client):
        response = quote(teller_client, bank.office_account("suspense"))

        assert_problem(response, 404, "account.not_found")

    def test_an_anonymous_caller_gets_no_quote(self, bank, make_client, open_account):
        response = quote(make_client(None), open_account())

        assert_problem(response, 401, "auth.not_authenticated")
