"""Every bad input to a money-moving endpoint is a problem+json with a stable code, and nothing
is written: no journal, entry, hold or idempotency record."""

import json

import pytest
from django.utils import timezone

from accounts import services as account_services
from tests.api.ledger_support import LedgerRows, assert_problem, new_key, post_json, seat
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def seated(bank, teller, supervisor):
    seat(teller, bank.branch)
    seat(supervisor, bank.branch)


@pytest.fixture
def teller_api(make_client, teller):
    return make_client(teller)


@pytest.fixture
def transfer(funded_account, open_account):
    """A valid transfer body (funded USD payer, USD payee) to spoil one field at a time."""
    payer = funded_account("100.00")
    payee = open_account()
    return {
        "debit_account": payer.account_number,
        "credit_account": payee.account_number,
        "amount": "10.00",
        "currency": "USD",
        "narration": "rent",
    }


MISSING = object()
SAME_AS_DEBIT = object()


def spoiled(body: dict, changes: dict) -> dict:
    """``body`` with ``changes`` applied (MISSING drops a field)."""
    out = dict(body)
    for field, value in changes.items():
        if value is MISSING:
            out.pop(field)
        else:
            out[field] = body["debit_account"] if value is SAME_AS_DEBIT else value
    return out


def bad(case_id: str, changes: dict, code: str, field: str | None, status: int = 400):
    return pytest.param(changes, status, code, field, id=case_id)


INVALID = "validation_error"
SPOILED_TRANSFERS = [
    bad("missing amount", {"amount": MISSING}, INVALID, "amount"),
    bad("missing currency", {"currency": MISSING}, INVALID, "currency"),
    bad("missing debit", {"debit_account": MISSING}, INVALID, "debit_account"),
    bad("null amount", {"amount": None}, INVALID, "amount"),
    bad("number amount", {"amount": 10}, INVALID, "amount"),
    bad("exponent", {"amount": "1e2"}, INVALID, "amount"),
    bad("underscore", {"amount": "1_000"}, INVALID, "amount"),
    bad("arabic digits", {"amount": "١٠٠"}, INVALID, "amount"),
    bad("fullwidth digits", {"amount": "１０"}, INVALID, "amount"),
    bad("padded", {"amount": " 10.00"}, INVALID, "amount"),
    bad("comma", {"amount": "1,000.00"}, INVALID, "amount"),
    bad("trailing dot", {"amount": "10."}, INVALID, "amount"),
    bad("infinity", {"amount": "Infinity"}, INVALID, "amount"),
    bad("zero", {"amount": "0.00"}, INVALID, "amount"),
    bad("negative", {"amount": "-5.00"}, INVALID, "amount"),
    bad("three decimals", {"amount": "1.001"}, INVALID, "amount"),
    bad("too large", {"amount": "99999999999999999"}, INVALID, "amount"),
    bad("over-long amount", {"amount": "1" * 40}, INVALID, "amount"),
    bad("lowercase currency", {"currency": "usd"}, INVALID, "currency"),
    bad("unknown currency", {"currency": "XYZ"}, INVALID, "currency"),
    bad("long currency", {"currency": "USDX"}, INVALID, "currency"),
    bad("short account", {"debit_account": "12345"}, INVALID, "debit_account"),
    bad("letters account", {"credit_account": "00010000018X"}, INVALID, "credit_account"),
    bad("number account", {"credit_account": 123456789012}, INVALID, "credit_account"),
    bad("long narration", {"narration": "x" * 201}, INVALID, "narration"),
    bad("newline narration", {"narration": "a\nb"}, INVALID, "narration"),
    bad("unknown field", {"memo": "hi"}, INVALID, "memo"),
    bad("server-owned status", {"status": "posted"}, INVALID, "status"),
    bad("server-owned txn", {"transaction_id": "T1"}, INVALID, "transaction_id"),
    bad(
        "other currency",
        {"currency": "KWD", "amount": "1.000"},
        "ledger.currency_mismatch",
        "currency",
    ),
    bad("same account", {"credit_account": SAME_AS_DEBIT}, "ledger.same_account", "credit_account"),
    bad("unknown account", {"credit_account": "000000000000"}, "account.not_found", None, 404),
    bad("more than available", {"amount": "100.01"}, "ledger.insufficient_funds", None, 422),
]


@pytest.mark.parametrize(("changes", "status", "code", "field"), SPOILED_TRANSFERS)
def test_a_spoiled_transfer_is_refused_and_writes_nothing(
    teller_api, transfer, changes, status, code, field
):
    before = LedgerRows.now()

    response = post_json(teller_api, "/api/v1/transfers", spoiled(transfer, changes))

    assert_problem(response, status, code, field)
    assert LedgerRows.now() == before


RAW_BODIES = [
    ("float number", lambda b: json.dumps(b).replace('"10.00"', "10.5")),
    ("exponent number", lambda b: json.dumps(b).replace('"10.00"', "1e2")),
    ("NaN", lambda b: json.dumps(b).replace('"10.00"', "NaN")),
    ("NUL in narration", lambda b: json.dumps({**b, "narration": "a\x00b"})),
    ("duplicate key", lambda b: json.dumps(b)[:-1] + ', "amount": "99.00"}'),
    ("truncated", lambda b: json.dumps(b)[:-5]),
    ("not UTF-8", lambda b: json.dumps(b).encode().replace(b"rent", b"\xffrent")),
]


@pytest.mark.parametrize(
    "spoil", [case[1] for case in RAW_BODIES], ids=[case[0] for case in RAW_BODIES]
)
def test_json_that_a_bank_must_not_guess_at_is_malformed_and_writes_nothing(
    teller_api, transfer, spoil
):
    before = LedgerRows.now()

    response = teller_api.post(
        "/api/v1/transfers",
        spoil(transfer),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )

    assert_problem(response, 400, "request.malformed")
    assert LedgerRows.now() == before


@pytest.mark.parametrize("body", [[], "10.00", None], ids=["list", "string", "null"])
def test_a_body_that_is_not_an_object_is_refused(teller_api, bank, body):
    response = teller_api.post(
        "/api/v1/transfers",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )

    assert_problem(response, 400, "validation_error")


def test_a_form_encoded_body_is_refused(teller_api, transfer):
    response = teller_api.post("/api/v1/transfers", transfer, HTTP_IDEMPOTENCY_KEY=new_key())

    assert_problem(response, 415, "request.unsupported_media_type")


class TestAccountStates:
    @pytest.fixture
    def payee(self, open_account):
        return open_account()

    def test_a_closed_account_takes_no_deposit(self, bank, teller_api, supervisor, payee):
        account_services.account_close(
            account_id=payee.pk,
            reason="customer request",
            actor=supervisor,
            business_date=bank.business_date,
            now=timezone.now(),
        )
        before = LedgerRows.now()

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": payee.account_number, "amount": "1.00", "currency": "USD"},
        )

        assert_problem(response, 422, "account.closed")
        assert LedgerRows.now() == before

    @pytest.mark.parametrize("endpoint", ["transfers", "withdrawals"])
    def test_a_debit_frozen_account_cannot_be_debited(
        self, teller_api, supervisor, transfer, endpoint
    ):
        account_services.account_freeze(
            account_id=self.account_id(transfer["debit_account"]),
            freeze_type="debit",
            reason="court order",
            actor=supervisor,
            now=timezone.now(),
        )
        body = (
            transfer
            if endpoint == "transfers"
            else {"account": transfer["debit_account"], "amount": "1.00", "currency": "USD"}
        )
        before = LedgerRows.now()

        response = post_json(teller_api, f"/api/v1/{endpoint}", body)

        assert_problem(response, 422, "account.frozen")
        assert LedgerRows.now() == before

    def test_a_totally_frozen_account_cannot_take_a_hold(self, teller_api, supervisor, transfer):
        account_services.account_freeze(
            account_id=self.account_id(transfer["debit_account"]),
            freeze_type="total",
            reason="fraud",
            actor=supervisor,
            now=timezone.now(),
        )
        before = LedgerRows.now()

        response = post_json(
            teller_api,
            f"/api/v1/accounts/{transfer['debit_account']}/holds",
            {"amount": "1.00", "currency": "USD", "reason": "lien"},
        )

        assert_problem(response, 422, "account.frozen")
        assert LedgerRows.now() == before

    @staticmethod
    def account_id(account_number: str) -> int:
        from accounts.models import Account

        return Account.objects.get(account_number=account_number).pk


class TestCashAndCurrency:
    def test_yen_amounts_have_no_decimals(self, teller_api, open_account):
        yen = open_account("SBA-JPY")
        before = LedgerRows.now()

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": yen.account_number, "amount": "1.5", "currency": "JPY"},
        )

        assert_problem(response, 400, "validation_error", "amount")
        assert response.json()["errors"][0]["code"] == "max_decimal_places"
        assert LedgerRows.now() == before

    def test_a_dinar_amount_has_at_most_three_decimals(self, teller_api, open_account):
        dinar = open_account("SBA-KWD")

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": dinar.account_number, "amount": "1.0001", "currency": "KWD"},
        )

        assert_problem(response, 400, "validation_error", "amount")

    def test_a_deposit_in_a_currency_with_no_till_is_refused(self, teller_api, open_account):
        saver = open_account()
        before = LedgerRows.now()

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": saver.account_number, "amount": "1.00", "currency": "EUR"},
        )

        assert_problem(response, 422, "ledger.no_teller_cash_account", "currency")
        assert LedgerRows.now() == before

    def test_a_teller_seated_nowhere_has_no_cash_account(self, make_client, bank, open_account):
        unseated = UserFactory(username="teller-unseated", roles=["teller"])
        saver = open_account()

        response = post_json(
            make_client(unseated),
            "/api/v1/withdrawals",
            {"account": saver.account_number, "amount": "1.00", "currency": "USD"},
        )

        assert_problem(response, 422, "ledger.no_teller_cash_account")

    def test_a_transfer_may_not_touch_an_office_account(self, bank, teller_api, transfer):
        before = LedgerRows.now()

        response = post_json(
            teller_api,
            "/api/v1/transfers",
            {**transfer, "credit_account": bank.office_account("fee_income").account_number},
        )

        assert_problem(response, 404, "account.not_found")
        assert LedgerRows.now() == before


class TestHoldAndReasonInputs:
    @pytest.mark.parametrize(
        ("change", "code", "field"),
        [
            ({"expires_on": "2026-11-30"}, "ledger.invalid_expiry", "expires_on"),
            ({"expires_on": "2026/12/31"}, "validation_error", "expires_on"),
            ({"reason": ""}, "validation_error", "reason"),
            ({"reason": "r" * 201}, "validation_error", "reason"),
            ({"amount": "0"}, "validation_error", "amount"),
            ({"currency": "JPY", "amount": "1"}, "ledger.currency_mismatch", "currency"),
            ({"journal": "T000000000001"}, "validation_error", "journal"),
        ],
    )
    def test_a_bad_hold_is_refused_and_writes_nothing(
        self, teller_api, funded_account, change, code, field
    ):
        saver = funded_account("100.00")
        body = {"amount": "1.00", "currency": "USD", "reason": "lien", **change}
        before = LedgerRows.now()

        response = post_json(teller_api, f"/api/v1/accounts/{saver.account_number}/holds", body)

        assert_problem(response, 400, code, field)
        assert LedgerRows.now() == before

    @pytest.mark.parametrize(
        ("body", "field"),
        [({}, "reason"), ({"reason": "x", "force": True}, "force"), ({"reason": 5}, "reason")],
    )
    def test_a_reversal_needs_exactly_a_reason(
        self, make_client, supervisor, funded_account, open_account, post_movement, body, field
    ):
        original = post_movement("transfer", funded_account("5.00"), open_account(), "1.00")
        before = LedgerRows.now()

        response = post_json(
            make_client(supervisor),
            f"/api/v1/transactions/{original.journal.txn_id}/reverse",
            body,
        )

        assert_problem(response, 400, "validation_error", field)
        assert LedgerRows.now() == before
