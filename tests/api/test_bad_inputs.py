"""Bad input never changes a row and is always answered with problem+json.

Each case counts the rows of the model the endpoint writes before and after; the answer must
be ``application/problem+json`` with a stable code and, for field problems, the field named.
"""

import json

import pytest
from django.utils import timezone
from rest_framework import serializers

from accounts import services
from accounts.models import Account, Customer
from banksim.api.fields import AmountField, CurrencyField
from tests.api.accounts_support import PROBLEM, assert_problem, customer_payload
from tests.factories import BranchFactory, CustomerFactory

CUSTOMERS = "/api/v1/customers"
ACCOUNTS = "/api/v1/accounts"

LONG = "x" * 10_000


@pytest.fixture
def head_office(db):
    """Just the calendar and branch 0001: enough for CIF requests, cheaper than ``bank``."""
    return BranchFactory(sol_code="0001", name="Head office")


@pytest.fixture
def teller_client(make_client, teller):
    return make_client(teller)


@pytest.fixture
def supervisor_client(make_client, supervisor):
    return make_client(supervisor)


def _error_codes(body, field):
    return {e["code"] for e in body.get("errors", []) if e["field"] == field}


def _without(payload, field):
    return {k: v for k, v in payload.items() if k != field}


# (case id, change to a valid payload, field at fault, field error code)
CUSTOMER_FIELD_CASES = [
    ("missing customer_type", lambda p: _without(p, "customer_type"), "customer_type", "required"),
    ("missing birth_date", lambda p: _without(p, "birth_date"), "birth_date", "required"),
    ("missing national_id", lambda p: _without(p, "national_id"), "national_id", "required"),
    (
        "missing national_id_type",
        lambda p: _without(p, "national_id_type"),
        "national_id_type",
        "required",
    ),
    ("missing home_branch", lambda p: _without(p, "home_branch"), "home_branch", "required"),
    ("null national_id", lambda p: {**p, "national_id": None}, "national_id", "null"),
    ("blank national_id", lambda p: {**p, "national_id": "  "}, "national_id", "blank"),
    (
        "unknown customer_type",
        lambda p: {**p, "customer_type": "alien"},
        "customer_type",
        "invalid_choice",
    ),
    (
        "unknown id type",
        lambda p: {**p, "national_id_type": "library_card"},
        "national_id_type",
        "invalid_choice",
    ),
    ("dd/mm/yyyy date", lambda p: {**p, "birth_date": "12/04/1990"}, "birth_date", "invalid"),
    ("basic ISO date", lambda p: {**p, "birth_date": "19900412"}, "birth_date", "invalid"),
    ("week date", lambda p: {**p, "birth_date": "1990-W15-4"}, "birth_date", "invalid"),
    ("unpadded date", lambda p: {**p, "birth_date": "1990-4-12"}, "birth_date", "invalid"),
    ("impossible date", lambda p: {**p, "birth_date": "1990-02-30"}, "birth_date", "invalid"),
    (
        "datetime for a date",
        lambda p: {**p, "birth_date": "1990-04-12T00:00:00"},
        "birth_date",
        "invalid",
    ),
    ("date as a number", lambda p: {**p, "birth_date": 19900412}, "birth_date", "invalid"),
    (
        "Arabic-Indic digits in a date",
        lambda p: {**p, "birth_date": "١٩٩٠-٠٤-١٢"},
        "birth_date",
        "invalid",
    ),
    ("malformed email", lambda p: {**p, "email": "amina-at-example"}, "email", "invalid"),
    ("national id as a number", lambda p: {**p, "national_id": 12345}, "national_id", "not_string"),
    (
        "lower-case national id",
        lambda p: {**p, "national_id": "ab-123"},
        "national_id",
        "invalid_format",
    ),
    (
        "Arabic-Indic digits in national id",
        lambda p: {**p, "national_id": "١٢"},
        "national_id",
        "invalid_format",
    ),
    (
        "spaces inside national id",
        lambda p: {**p, "national_id": "AB 123"},
        "national_id",
        "invalid_format",
    ),
    (
        "over-long national id",
        lambda p: {**p, "national_id": "A" * 41},
        "national_id",
        "max_length",
    ),
    ("short SOL code", lambda p: {**p, "home_branch": "1"}, "home_branch", "invalid_format"),
    ("long SOL code", lambda p: {**p, "home_branch": "00001"}, "home_branch", "max_length"),
    (
        "Arabic-Indic SOL code",
        lambda p: {**p, "home_branch": "٠٠٠١"},
        "home_branch",
        "invalid_format",
    ),
    ("SOL code as a number", lambda p: {**p, "home_branch": 1}, "home_branch", "not_string"),
    ("phone with letters", lambda p: {**p, "phone": "call me"}, "phone", "invalid_format"),
    ("Arabic-Indic phone", lambda p: {**p, "phone": "١٢٣٤٥٦٧"}, "phone", "invalid_format"),
    ("over-long first name", lambda p: {**p, "first_name": "A" * 101}, "first_name", "max_length"),
    ("very long first name", lambda p: {**p, "first_name": LONG}, "first_name", "max_length"),
    ("over-long legal name", lambda p: {**p, "legal_name": "A" * 201}, "legal_name", "max_length"),
    ("over-long address", lambda p: {**p, "address": "A" * 301}, "address", "max_length"),
    (
        "over-long email",
        lambda p: {**p, "email": "a" * 190 + "@example.com"},
        "email",
        "max_length",
    ),
    ("name as a number", lambda p: {**p, "first_name": 7}, "first_name", "not_string"),
    ("name as a list", lambda p: {**p, "first_name": ["Amina"]}, "first_name", "not_string"),
    ("name as a boolean", lambda p: {**p, "first_name": True}, "first_name", "not_string"),
    (
        "newline in a name",
        lambda p: {**p, "first_name": "Amina\nDROP"},
        "first_name",
        "control_characters",
    ),
    (
        "escape in an address",
        lambda p: {**p, "address": "1 Road\x1b[2J"},
        "address",
        "control_characters",
    ),
    ("unknown field", lambda p: {**p, "nickname": "Mimi"}, "nickname", "unknown_field"),
    (
        "KYC status on create",
        lambda p: {**p, "kyc_status": "verified"},
        "kyc_status",
        "unknown_field",
    ),
    ("server-owned cif_id", lambda p: {**p, "cif_id": "C000000001"}, "cif_id", "server_owned"),
    ("server-owned status", lambda p: {**p, "status": "active"}, "status", "server_owned"),
    ("server-owned balance", lambda p: {**p, "balance": "1000000.00"}, "balance", "server_owned"),
    ("server-owned id", lambda p: {**p, "id": 1}, "id", "server_owned"),
    (
        "server-owned created_at",
        lambda p: {**p, "created_at": "2020-01-01T00:00:00Z"},
        "created_at",
        "server_owned",
    ),
]


@pytest.mark.django_db
class TestCustomerCreateRefusesBadFields:
    @pytest.mark.parametrize(
        ("change", "field", "code"),
        [case[1:] for case in CUSTOMER_FIELD_CASES],
        ids=[case[0] for case in CUSTOMER_FIELD_CASES],
    )
    def test_answers_validation_error_naming_the_field_and_creates_nothing(
        self, head_office, teller_client, change, field, code
    ):
        payload = change(customer_payload())
        before = Customer.objects.count()

        response = teller_client.post(CUSTOMERS, payload, format="json")

        body = assert_problem(response, 400, "validation_error", field=field)
        assert code in _error_codes(body, field), body
        assert Customer.objects.count() == before

    def test_refuses_a_national_id_already_registered(self, head_office, teller_client):
        existing = CustomerFactory(home_branch=head_office, national_id="NG12345678")
        before = Customer.objects.count()

        response = teller_client.post(
            CUSTOMERS, customer_payload(national_id=existing.national_id), format="json"
        )

        assert_problem(response, 409, "customer.duplicate_national_id", field="national_id")
        assert Customer.objects.count() == before

    def test_allows_the_same_number_under_another_id_type(self, head_office, teller_client):
        existing = CustomerFactory(home_branch=head_office, national_id="P1234567")

        response = teller_client.post(
            CUSTOMERS,
            customer_payload(national_id=existing.national_id, national_id_type="passport"),
            format="json",
        )

        assert response.status_code == 201


def _valid_json(**replace_raw):
    """A valid customer body as JSON text, with raw JSON spliced in for some fields."""
    text = json.dumps(customer_payload())
    for field, raw in replace_raw.items():
        text = text[:-1] + f', "{field}": {raw}}}'
    return text


RAW_BODY_CASES = [
    ("float number", _valid_json(risk_grade="1.5")),
    ("exponent number", _valid_json(risk_grade="1e2")),
    ("negative float", _valid_json(segment="-0.0")),
    ("NaN", _valid_json(segment="NaN")),
    ("Infinity", _valid_json(segment="Infinity")),
    ("NUL in a string", _valid_json(address='"12 Marina\\u0000Road"')),
    ("NUL in a key", '{"first\\u0000name": "A"}'),
    ("duplicate key", _valid_json(first_name='"Mallory"')),
    ("syntax error", '{"customer_type": "individual",'),
    ("single quotes", "{'customer_type': 'individual'}"),
]


@pytest.mark.django_db
class TestCustomerCreateRefusesMalformedBodies:
    @pytest.mark.parametrize(
        "raw", [case[1] for case in RAW_BODY_CASES], ids=[case[0] for case in RAW_BODY_CASES]
    )
    def test_answers_request_malformed_and_creates_nothing(self, head_office, teller_client, raw):
        before = Customer.objects.count()

        response = teller_client.post(CUSTOMERS, raw, content_type="application/json")

        assert_problem(response, 400, "request.malformed")
        assert Customer.objects.count() == before

    def test_says_why_a_float_is_refused(self, head_office, teller_client):
        response = teller_client.post(
            CUSTOMERS, _valid_json(risk_grade="1.5"), content_type="application/json"
        )

        body = assert_problem(response, 400, "request.malformed")
        assert "as strings" in body["detail"]

    def test_refuses_a_lone_surrogate_in_a_string(self, head_office, teller_client):
        before = Customer.objects.count()
        raw = json.dumps(customer_payload(last_name="\ud800"))  # escaped as \ud800 on the wire

        response = teller_client.post(CUSTOMERS, raw, content_type="application/json")

        body = assert_problem(response, 400, "validation_error", field="last_name")
        assert "surrogate_characters_not_allowed" in _error_codes(body, "last_name")
        assert Customer.objects.count() == before

    def test_refuses_a_body_that_is_not_utf8(self, head_office, teller_client):
        before = Customer.objects.count()

        response = teller_client.post(
            CUSTOMERS, b'{"first_name": "\xff\xfe"}', content_type="application/json"
        )

        assert_problem(response, 400, "request.malformed")
        assert Customer.objects.count() == before

    @pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null"])
    def test_refuses_a_body_that_is_not_an_object(self, head_office, teller_client, raw):
        before = Customer.objects.count()

        response = teller_client.post(CUSTOMERS, raw, content_type="application/json")

        assert_problem(response, 400, "validation_error", field="")
        assert Customer.objects.count() == before

    def test_refuses_a_form_encoded_body(self, head_office, teller_client):
        before = Customer.objects.count()

        response = teller_client.post(CUSTOMERS, customer_payload(), format="multipart")

        assert_problem(response, 415, "request.unsupported_media_type")
        assert Customer.objects.count() == before


@pytest.mark.django_db
class TestCustomerUpdateRefusesBadFields:
    @pytest.mark.parametrize(
        ("changes", "field", "code"),
        [
            ({"email": "nope"}, "email", "invalid"),
            ({"phone": "+1 555\t0100"}, "phone", "control_characters"),
            ({"address": "A" * 301}, "address", "max_length"),
            ({"risk_grade": "extreme"}, "risk_grade", "invalid_choice"),
            ({"segment": None}, "segment", "null"),
            ({"status": "closed"}, "status", "server_owned"),
            ({"birth_date": "2000-01-01"}, "birth_date", "unknown_field"),
        ],
    )
    def test_changes_nothing(self, head_office, teller_client, changes, field, code):
        customer = CustomerFactory(home_branch=head_office, email="kept@example.com")
        versions = customer.history.count()

        response = teller_client.patch(f"{CUSTOMERS}/{customer.cif_id}", changes, format="json")

        body = assert_problem(response, 400, "validation_error", field=field)
        assert code in _error_codes(body, field)
        assert customer.history.count() == versions
        customer.refresh_from_db()
        assert customer.email == "kept@example.com"


@pytest.mark.django_db
class TestQueryParametersAreStrict:
    @pytest.mark.parametrize(
        "limit", ["1e2", "1_000", "١٢", "12.0", "-1", "0", "101", " 5", "+5", "0x10", "5 "]
    )
    def test_refuses_a_limit_that_is_not_plain_ascii_digits_in_range(
        self, head_office, teller_client, limit
    ):
        response = teller_client.get(CUSTOMERS, {"limit": limit})

        assert_problem(response, 400, "validation_error", field="limit")

    @pytest.mark.parametrize("offset", ["1e2", "1_000", "٣", "-5"])
    def test_refuses_a_bad_offset(self, head_office, teller_client, offset):
        response = teller_client.get(ACCOUNTS, {"offset": offset})

        assert_problem(response, 400, "validation_error", field="offset")

    @pytest.mark.parametrize(
        ("params", "field", "code"),
        [
            ({"q": "A" * 101}, "q", "max_length"),
            ({"q": "Ada\x00"}, "q", "control_characters"),
            ({"kyc_status": "unknown"}, "kyc_status", "invalid_choice"),
            ({"cif_id": "c000000001"}, "cif_id", "invalid_format"),
            ({"sort": "name"}, "sort", "unknown_field"),
        ],
    )
    def test_refuses_bad_customer_filters(self, head_office, teller_client, params, field, code):
        response = teller_client.get(CUSTOMERS, params)

        body = assert_problem(response, 400, "validation_error", field=field)
        assert code in _error_codes(body, field)

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "open"}, "status"),
            ({"product": "sba-usd"}, "product"),
            ({"customer": LONG}, "customer"),
        ],
    )
    def test_refuses_bad_account_filters(self, head_office, teller_client, params, field):
        response = teller_client.get(ACCOUNTS, params)

        assert_problem(response, 400, "validation_error", field=field)


@pytest.mark.django_db
class TestAccountOpenRefusesBadInput:
    @pytest.fixture
    def holder(self, bank):
        return CustomerFactory(home_branch=bank.branch)

    @pytest.mark.parametrize(
        ("change", "field", "code"),
        [
            (lambda p: _without(p, "customer"), "customer", "required"),
            (lambda p: _without(p, "product"), "product", "required"),
            (lambda p: _without(p, "branch"), "branch", "required"),
            (lambda p: {**p, "customer": p["customer"].lower()}, "customer", "invalid_format"),
            (lambda p: {**p, "product": "sba-usd"}, "product", "invalid_format"),
            (lambda p: {**p, "product": "SBA-USD-EXTRA-LONG"}, "product", "max_length"),
            (lambda p: {**p, "title": "T" * 201}, "title", "max_length"),
            (lambda p: {**p, "currency": "USD"}, "currency", "unknown_field"),
            (lambda p: {**p, "account_number": "000100000181"}, "account_number", "server_owned"),
            (lambda p: {**p, "status": "frozen"}, "status", "server_owned"),
            (lambda p: {**p, "ledger_balance": "1000000.00"}, "ledger_balance", "server_owned"),
            (lambda p: {**p, "available_balance": "5.00"}, "available_balance", "server_owned"),
        ],
    )
    def test_opens_nothing(self, bank, holder, teller_client, change, field, code):
        payload = change({"customer": holder.cif_id, "product": "SBA-USD", "branch": "0001"})
        before = Account.objects.count()

        response = teller_client.post(ACCOUNTS, payload, format="json")

        body = assert_problem(response, 400, "validation_error", field=field)
        assert code in _error_codes(body, field)
        assert Account.objects.count() == before

    def test_refuses_a_float_anywhere_in_the_body(self, bank, holder, teller_client):
        before = Account.objects.count()
        raw = f'{{"customer": "{holder.cif_id}", "product": "SBA-USD", "branch": "0001", "x": 1.5}}'

        response = teller_client.post(ACCOUNTS, raw, content_type="application/json")

        assert_problem(response, 400, "request.malformed")
        assert Account.objects.count() == before


@pytest.mark.django_db
class TestAccountStatusChangesRefuseBadInput:
    @pytest.mark.parametrize(
        ("action", "payload", "field", "code"),
        [
            ("freeze", {"reason": "court order"}, "freeze_type", "required"),
            ("freeze", {"freeze_type": "partial", "reason": "x"}, "freeze_type", "invalid_choice"),
            ("freeze", {"freeze_type": "debit"}, "reason", "required"),
            ("freeze", {"freeze_type": "debit", "reason": ""}, "reason", "blank"),
            ("freeze", {"freeze_type": "debit", "reason": "R" * 201}, "reason", "max_length"),
            (
                "freeze",
                {"freeze_type": "debit", "reason": "x", "status": "frozen"},
                "status",
                "server_owned",
            ),
            ("unfreeze", {}, "reason", "required"),
            ("close", {"reason": "R" * 201}, "reason", "max_length"),
            ("close", {"reason": "x", "closed_on": "2026-11-30"}, "closed_on", "unknown_field"),
            ("close", {"reason": "x", "balance": "0.00"}, "balance", "server_owned"),
        ],
    )
    def test_changes_nothing(
        self, bank, open_account, supervisor_client, action, payload, field, code
    ):
        account = open_account()
        versions = account.history.count()

        response = supervisor_client.post(
            f"{ACCOUNTS}/{account.account_number}/{action}", payload, format="json"
        )

        body = assert_problem(response, 400, "validation_error", field=field)
        assert code in _error_codes(body, field)
        assert account.history.count() == versions
        account.refresh_from_db()
        assert account.status == Account.Status.ACTIVE

    def test_freezing_twice_is_refused_and_keeps_the_first_freeze(
        self, bank, open_account, supervisor, supervisor_client
    ):
        account = open_account()
        services.account_freeze(
            account_id=account.pk,
            freeze_type="debit",
            reason="first",
            actor=supervisor,
            now=timezone.now(),
        )
        versions = account.history.count()

        response = supervisor_client.post(
            f"{ACCOUNTS}/{account.account_number}/freeze",
            {"freeze_type": "total", "reason": "second"},
            format="json",
        )

        assert_problem(response, 422, "account.status_transition_invalid")
        assert account.history.count() == versions


@pytest.mark.django_db
class TestUnknownPathsAndMethods:
    def test_a_trailing_slash_is_not_found(self, head_office, teller_client):
        response = teller_client.get(f"{CUSTOMERS}/")

        assert_problem(response, 404, "not_found")

    def test_an_unsupported_method_is_405_with_allow(self, head_office, teller_client):
        response = teller_client.delete(CUSTOMERS)

        assert_problem(response, 405, "request.method_not_allowed")
        assert set(response["Allow"].split(", ")) >= {"GET", "POST"}

    def test_a_bad_token_is_401(self, head_office, client):
        response = client.get(CUSTOMERS, HTTP_AUTHORIZATION="Token not-a-real-token")

        assert_problem(response, 401, "auth.failed")
        assert response["Content-Type"] == PROBLEM


class _AmountOnly(serializers.Serializer):
    """No CIF/accounts endpoint takes an amount yet: exercise the shared fields directly."""

    amount = AmountField()
    currency = CurrencyField()


class TestAmountAndCurrencyFields:
    @pytest.mark.parametrize(
        "amount",
        [
            1.5,
            100,
            "1e2",
            "1E2",
            "1_000",
            "١٢",
            "１２",
            "1,000.00",
            " 1.00",
            "+1.00",
            "1.",
            ".5",
            "00.10",
            "NaN",
            "Infinity",
            "0x10",
            "1" * 40,
            "",
        ],
    )
    def test_refuses_anything_but_a_plain_decimal_string(self, amount):
        serializer = _AmountOnly(data={"amount": amount, "currency": "USD"})

        assert not serializer.is_valid()
        assert "amount" in serializer.errors

    @pytest.mark.parametrize("amount", ["0", "0.00", "-5.00"])
    def test_refuses_zero_and_negative_amounts(self, amount):
        serializer = _AmountOnly(data={"amount": amount, "currency": "USD"})

        assert not serializer.is_valid()
        assert serializer.errors["amount"][0].code == "not_positive"

    @pytest.mark.parametrize("currency", ["usd", "Usd", "XYZ", "US", "USDD", "", 840])
    def test_refuses_unknown_or_lowercase_currencies(self, currency):
        serializer = _AmountOnly(data={"amount": "1.00", "currency": currency})

        assert not serializer.is_valid()
        assert "currency" in serializer.errors

    def test_accepts_a_plain_amount_and_an_iso_code(self):
        serializer = _AmountOnly(data={"amount": "100.50", "currency": "KWD"})

        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data == {"amount": "100.50", "currency": "KWD"}
