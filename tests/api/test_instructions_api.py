"""Standing-instruction endpoints through the real view stack."""

from __future__ import annotations

import pytest

from instructions.models import StandingInstruction
from tests.api.accounts_support import assert_problem


@pytest.fixture
def payer(open_account):
    return open_account()


@pytest.fixture
def payee(open_account):
    return open_account()


def body(payer, payee, **overrides):
    return {
        "debit_account": payer.account_number,
        "credit_account": payee.account_number,
        "amount": "25.00",
        "currency": "USD",
        "frequency": "monthly",
        "next_date": "2026-12-31",
        **overrides,
    }


class TestCreate:
    def test_a_teller_creates_an_instruction_without_an_idempotency_key(
        self, make_client, teller, payer, payee
    ):
        response = make_client(teller).post(
            "/api/v1/standing-instructions",
            body(payer, payee, carry_forward=True, max_retries=2, end_date="2027-06-30"),
            format="json",
        )

        assert response.status_code == 201, response.content
        data = response.json()
        assert data["debit_account"] == payer.account_number
        assert (data["amount"], data["currency"], data["status"]) == ("25.00", "USD", "active")
        assert (data["next_date"], data["end_date"]) == ("2026-12-31", "2027-06-30")
        assert (data["carry_forward"], data["max_retries"], data["runs"]) == (True, 2, [])
        assert StandingInstruction.objects.get(pk=data["id"]).created_by == teller

    def test_an_auditor_cannot_create(self, make_client, auditor, payer, payee):
        response = make_client(auditor).post(
            "/api/v1/standing-instructions", body(payer, payee), format="json"
        )

        assert_problem(response, 403, "auth.forbidden")
        assert not StandingInstruction.objects.filter(debit_account=payer).exists()

    @pytest.mark.parametrize(
        ("overrides", "status", "code", "field"),
        [
            ({"next_date": "2026-11-29"}, 400, "instructions.date_invalid", "next_date"),
            ({"end_date": "2026-12-30"}, 400, "instructions.date_invalid", "end_date"),
            ({"currency": "JPY", "amount": "25"}, 400, "instructions.currency_mismatch", None),
            ({"amount": 25}, 400, "validation_error", "amount"),
            ({"frequency": "hourly"}, 400, "validation_error", "frequency"),
            ({"carry_forward": "yes"}, 400, "validation_error", "carry_forward"),
            ({"max_retries": "2"}, 400, "validation_error", "max_retries"),
            ({"status": "completed"}, 400, "validation_error", "status"),
            ({"debit_account": "000199999990"}, 404, "account.not_found", None),
        ],
    )
    def test_bad_inputs_are_refused_and_nothing_is_saved(
        self, make_client, teller, payer, payee, overrides, status, code, field
    ):
        response = make_client(teller).post(
            "/api/v1/standing-instructions", body(payer, payee, **overrides), format="json"
        )

        assert_problem(response, status, code, field)
        assert not StandingInstruction.objects.filter(credit_account=payee).exists()

    def test_the_same_account_on_both_sides_is_refused(self, make_client, teller, payer):
        response = make_client(teller).post(
            "/api/v1/standing-instructions", body(payer, payer), format="json"
        )

        assert_problem(response, 400, "instructions.same_account", "credit_account")


class TestReadAndCancel:
    def test_any_role_lists_an_accounts_instructions(
        self, make_client, teller, auditor, payer, payee, open_account
    ):
        teller_api = make_client(teller)
        mine = teller_api.post(
            "/api/v1/standing-instructions", body(payer, payee), format="json"
        ).json()
        teller_api.post("/api/v1/standing-instructions", body(open_account(), payee), format="json")

        response = make_client(auditor).get(
            f"/api/v1/standing-instructions?account={payer.account_number}"
        )

        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [mine["id"]]

    def test_a_bad_account_filter_is_refused(self, make_client, auditor):
        response = make_client(auditor).get("/api/v1/standing-instructions?account=12")

        assert_problem(response, 400, "validation_error", "account")

    def test_an_unknown_instruction_is_not_found(self, make_client, auditor, bank):
        response = make_client(auditor).get("/api/v1/standing-instructions/999999")

        assert_problem(response, 404, "instructions.not_found")

    def test_a_teller_cancels_once_and_the_second_cancel_conflicts(
        self, make_client, teller, payer, payee
    ):
        api = make_client(teller)
        created = api.post("/api/v1/standing-instructions", body(payer, payee), format="json")
        path = f"/api/v1/standing-instructions/{created.json()['id']}/cancel"

        first = api.post(path, {"reason": "customer asked"}, format="json")
        second = api.post(path, {"reason": "again"}, format="json")

        assert first.status_code == 200
        assert first.json()["status"] == "cancelled"
        assert_problem(second, 409, "instructions.not_active")

    def test_an_auditor_cannot_cancel(self, make_client, teller, auditor, payer, payee):
        created = make_client(teller).post(
            "/api/v1/standing-instructions", body(payer, payee), format="json"
        )

        response = make_client(auditor).post(
            f"/api/v1/standing-instructions/{created.json()['id']}/cancel",
            {"reason": "no"},
            format="json",
        )

        assert_problem(response, 403, "auth.forbidden")
        assert StandingInstruction.objects.get(pk=created.json()["id"]).status == "active"
