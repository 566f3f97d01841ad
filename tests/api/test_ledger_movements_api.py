"""The ledger's money-moving endpoints through the real view stack: movements, maker-checker,
reversal and holds."""

import pytest

from ledger.models import ApprovalThreshold, Hold, Journal
from ledger.selectors import balance_snapshot, ledger_violations
from tests.api.ledger_support import LedgerRows, assert_problem, post_json, seat
from tests.factories import UserFactory


def ledger(account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


def available(account) -> str:
    return balance_snapshot(account_id=account.pk).available.to_wire()


@pytest.fixture(autouse=True)
def seated(bank, teller, supervisor):
    seat(teller, bank.branch)
    seat(supervisor, bank.branch)


@pytest.fixture
def teller_api(make_client, teller):
    return make_client(teller)


@pytest.fixture
def supervisor_api(make_client, supervisor):
    return make_client(supervisor)


@pytest.fixture
def checker_api(make_client, bank):
    """A second supervisor, to approve what the first one entered."""
    return make_client(UserFactory(username="super2", roles=["supervisor"]))


def require_approval_above_1000_usd() -> ApprovalThreshold:
    """From now on, teller movements above 1,000.00 USD wait for a supervisor.

    Called after funding: the funding deposits go through the teller channel too.
    """
    return ApprovalThreshold.objects.create(currency="USD", channel="teller", amount_minor=100_000)


class TestTransferCreate:
    def test_a_transfer_posts_and_answers_with_the_journal_and_its_entries(
        self, teller_api, funded_account, open_account
    ):
        payer = funded_account("100.00")
        payee = open_account("CAA-USD")

        response = post_json(
            teller_api,
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": payee.account_number,
                "amount": "40.10",
                "currency": "USD",
                "narration": "rent",
            },
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["txn_id"].startswith("T")
        assert (body["status"], body["type"], body["channel"]) == ("posted", "transfer", "teller")
        assert (body["amount"], body["currency"], body["business_date"]) == (
            "40.10",
            "USD",
            "2026-11-30",
        )
        assert body["narration"] == "rent"
        assert body["maker"] == "teller1"
        assert body["entries"] == [
            {
                "account_number": payer.account_number,
                "side": "D",
                "amount": "40.10",
                "balance_after": "59.90",
                "purpose": "principal",
            },
            {
                "account_number": payee.account_number,
                "side": "C",
                "amount": "40.10",
                "balance_after": "40.10",
                "purpose": "principal",
            },
        ]
        assert (ledger(payer), ledger(payee)) == ("59.90", "40.10")
        assert ledger_violations() == []

    def test_above_the_threshold_a_transfer_is_entered_with_its_amount_held(
        self, teller_api, funded_account, open_account
    ):
        payer = funded_account("5000.00")
        require_approval_above_1000_usd()
        payee = open_account()

        response = post_json(
            teller_api,
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": payee.account_number,
                "amount": "1500.00",
                "currency": "USD",
            },
        )

        assert response.status_code == 202, response.content
        body = response.json()
        assert (body["status"], body["amount"], body["entries"]) == ("entered", "1500.00", [])
        assert body["posted_at"] is None
        assert (ledger(payer), available(payer), ledger(payee)) == ("5000.00", "3500.00", "0.00")


class TestCashMovements:
    def test_a_deposit_debits_the_branch_till_and_credits_the_customer(
        self, bank, teller_api, open_account
    ):
        saver = open_account()
        till = bank.office_account("teller_cash", "USD")

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": saver.account_number, "amount": "250.75", "currency": "USD"},
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["type"] == "cash_deposit"
        assert [(e["account_number"], e["side"]) for e in body["entries"]] == [
            (till.account_number, "D"),
            (saver.account_number, "C"),
        ]
        assert (ledger(saver), ledger(till)) == ("250.75", "-250.75")

    def test_a_withdrawal_debits_the_customer_and_credits_the_till(
        self, bank, teller_api, funded_account
    ):
        saver = funded_account("100.00")
        till = bank.office_account("teller_cash", "USD")

        response = post_json(
            teller_api,
            "/api/v1/withdrawals",
            {"account": saver.account_number, "amount": "30.00", "currency": "USD"},
        )

        assert response.status_code == 201, response.content
        assert response.json()["type"] == "cash_withdrawal"
        assert (ledger(saver), ledger(till)) == ("70.00", "-70.00")

    def test_the_tellers_own_till_wins_over_the_branch_account(
        self, bank, teller, teller_api, open_account
    ):
        own_till = bank.office_account("vault_cash", "USD")
        teller.staff_profile.cash_accounts.add(own_till)
        saver = open_account()

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": saver.account_number, "amount": "10.00", "currency": "USD"},
        )

        assert response.status_code == 201, response.content
        assert response.json()["entries"][0]["account_number"] == own_till.account_number
        assert ledger(bank.office_account("teller_cash", "USD")) == "0.00"

    def test_cash_in_yen_goes_through_the_yen_till(self, bank, teller_api, open_account):
        yen = open_account("SBA-JPY")

        response = post_json(
            teller_api,
            "/api/v1/deposits",
            {"account": yen.account_number, "amount": "1500", "currency": "JPY"},
        )

        assert response.status_code == 201, response.content
        assert ledger(bank.office_account("teller_cash", "JPY")) == "-1500"
        assert ledger(yen) == "1500"


class TestAdjustmentCreate:
    def test_a_supervisor_moves_money_between_gl_accounts(self, bank, supervisor_api):
        suspense = bank.office_account("suspense")
        fee_income = bank.office_account("fee_income")

        response = post_json(
            supervisor_api,
            "/api/v1/adjustments",
            {
                "debit_account": suspense.account_number,
                "credit_account": fee_income.account_number,
                "amount": "3.00",
                "currency": "USD",
                "narration": "reclass",
            },
        )

        assert response.status_code == 201, response.content
        assert response.json()["type"] == "adjustment"
        assert (ledger(suspense), ledger(fee_income)) == ("-3.00", "3.00")

    def test_an_adjustment_touching_a_customer_account_is_refused(
        self, bank, supervisor_api, funded_account
    ):
        customer = funded_account("10.00")
        before = LedgerRows.now()

        response = post_json(
            supervisor_api,
            "/api/v1/adjustments",
            {
                "debit_account": customer.account_number,
                "credit_account": bank.office_account("fee_income").account_number,
                "amount": "1.00",
                "currency": "USD",
            },
        )

        assert_problem(response, 422, "ledger.not_office_account")
        assert LedgerRows.now() == before


class TestMakerChecker:
    @pytest.fixture
    def entered(self, teller_api, funded_account, open_account):
        """A 1,500.00 transfer entered by the teller, and its two accounts."""
        payer = funded_account("5000.00")
        require_approval_above_1000_usd()
        payee = open_account()
        response = post_json(
            teller_api,
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": payee.account_number,
                "amount": "1500.00",
                "currency": "USD",
            },
        )
        assert response.status_code == 202, response.content
        return response.json()["txn_id"], payer, payee

    def test_a_supervisor_approval_posts_the_entered_transfer(self, supervisor_api, entered):
        txn_id, payer, payee = entered

        response = post_json(supervisor_api, f"/api/v1/transactions/{txn_id}/approve")

        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["status"], body["maker"], body["checker"]) == ("posted", "teller1", "super1")
        assert len(body["entries"]) == 2
        assert (ledger(payer), available(payer), ledger(payee)) == (
            "3500.00",
            "3500.00",
            "1500.00",
        )
        assert Hold.objects.get(journal__txn_id=txn_id).status == Hold.Status.CONSUMED
        assert ledger_violations() == []

    def test_the_maker_cannot_approve_their_own_transfer(
        self, supervisor_api, funded_account, open_account
    ):
        payer = funded_account("5000.00")
        require_approval_above_1000_usd()
        made = post_json(
            supervisor_api,
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": open_account().account_number,
                "amount": "1500.00",
                "currency": "USD",
            },
        ).json()
        before = LedgerRows.now()

        response = post_json(supervisor_api, f"/api/v1/transactions/{made['txn_id']}/approve")

        assert_problem(response, 403, "ledger.self_approval")
        assert LedgerRows.now() == before
        assert Journal.objects.get(txn_id=made["txn_id"]).status == Journal.Status.ENTERED

    def test_approving_twice_with_a_new_key_is_a_conflict(
        self, supervisor_api, checker_api, entered
    ):
        txn_id, payer, _ = entered
        post_json(supervisor_api, f"/api/v1/transactions/{txn_id}/approve")
        before = LedgerRows.now()

        response = post_json(checker_api, f"/api/v1/transactions/{txn_id}/approve")

        assert_problem(response, 409, "ledger.transaction_not_pending")
        assert LedgerRows.now() == before
        assert ledger(payer) == "3500.00"

    def test_approving_twice_with_the_same_key_replays_the_first_answer(
        self, supervisor_api, entered
    ):
        txn_id, payer, _ = entered
        path = f"/api/v1/transactions/{txn_id}/approve"
        first = post_json(supervisor_api, path, key="approve-once")

        second = post_json(supervisor_api, path, key="approve-once")

        assert (second.status_code, second.content) == (first.status_code, first.content)
        assert second["Idempotent-Replayed"] == "true"
        assert ledger(payer) == "3500.00"

    def test_rejection_releases_the_held_amount_and_posts_nothing(self, supervisor_api, entered):
        txn_id, payer, payee = entered

        response = supervisor_api.post(
            f"/api/v1/transactions/{txn_id}/reject", {"reason": "no documents"}, format="json"
        )

        assert response.status_code == 200, response.content
        assert response.json()["status"] == "rejected"
        assert (ledger(payer), available(payer), ledger(payee)) == ("5000.00", "5000.00", "0.00")

    def test_a_rejected_transfer_cannot_be_approved(self, supervisor_api, checker_api, entered):
        txn_id, _, _ = entered
        supervisor_api.post(
            f"/api/v1/transactions/{txn_id}/reject", {"reason": "no documents"}, format="json"
        )

        response = post_json(checker_api, f"/api/v1/transactions/{txn_id}/approve")

        assert_problem(response, 409, "ledger.transaction_not_pending")

    def test_the_maker_cannot_reject_their_own_transfer(
        self, supervisor_api, funded_account, open_account
    ):
        payer = funded_account("5000.00")
        require_approval_above_1000_usd()
        made = post_json(
            supervisor_api,
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": open_account().account_number,
                "amount": "1500.00",
                "currency": "USD",
            },
        ).json()

        response = supervisor_api.post(
            f"/api/v1/transactions/{made['txn_id']}/reject", {"reason": "oops"}, format="json"
        )

        assert_problem(response, 403, "ledger.self_approval")


class TestReversal:
    @pytest.fixture
    def posted(self, funded_account, open_account, post_movement):
        payer = funded_account("100.00")
        payee = open_account()
        journal = post_movement("transfer", payer, payee, "30.00").journal
        return journal.txn_id, payer, payee

    def test_a_reversal_restores_both_balances_and_links_the_original(self, supervisor_api, posted):
        txn_id, payer, payee = posted

        response = post_json(
            supervisor_api, f"/api/v1/transactions/{txn_id}/reverse", {"reason": "keyed twice"}
        )

        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["type"], body["reversal_of"], body["amount"]) == ("reversal", txn_id, "30.00")
        assert [(e["account_number"], e["side"]) for e in body["entries"]] == [
            (payer.account_number, "C"),
            (payee.account_number, "D"),
        ]
        assert (ledger(payer), ledger(payee)) == ("100.00", "0.00")
        original = supervisor_api.get(f"/api/v1/transactions/{txn_id}").json()
        assert original["reversed_by"] == body["txn_id"]
        assert ledger_violations() == []

    def test_reversing_twice_is_a_conflict_and_posts_nothing(self, supervisor_api, posted):
        txn_id, payer, _ = posted
        post_json(supervisor_api, f"/api/v1/transactions/{txn_id}/reverse", {"reason": "dup"})
        before = LedgerRows.now()

        response = post_json(
            supervisor_api, f"/api/v1/transactions/{txn_id}/reverse", {"reason": "dup again"}
        )

        assert_problem(response, 409, "ledger.already_reversed")
        assert LedgerRows.now() == before
        assert ledger(payer) == "100.00"

    def test_a_reversal_cannot_itself_be_reversed(self, supervisor_api, posted):
        txn_id, _, _ = posted
        reversal = post_json(
            supervisor_api, f"/api/v1/transactions/{txn_id}/reverse", {"reason": "dup"}
        ).json()

        response = post_json(
            supervisor_api,
            f"/api/v1/transactions/{reversal['txn_id']}/reverse",
            {"reason": "undo the undo"},
        )

        assert_problem(response, 422, "ledger.not_reversible")

    def test_an_unknown_transaction_is_not_found(self, supervisor_api):
        response = post_json(
            supervisor_api, "/api/v1/transactions/T999999999999/reverse", {"reason": "x"}
        )

        assert_problem(response, 404, "ledger.transaction_not_found")


class TestHolds:
    def test_a_hold_reduces_available_and_its_release_restores_it(self, teller_api, funded_account):
        saver = funded_account("100.00")

        placed = post_json(
            teller_api,
            f"/api/v1/accounts/{saver.account_number}/holds",
            {"amount": "60.00", "currency": "USD", "reason": "card authorisation"},
        )

        assert placed.status_code == 201, placed.content
        hold = placed.json()
        assert (hold["amount"], hold["currency"], hold["status"]) == ("60.00", "USD", "active")
        assert (hold["account_number"], hold["txn_id"]) == (saver.account_number, None)
        assert (ledger(saver), available(saver)) == ("100.00", "40.00")

        released = teller_api.post(f"/api/v1/holds/{hold['id']}/release", {}, format="json")

        assert released.status_code == 200, released.content
        assert released.json()["status"] == "released"
        assert available(saver) == "100.00"

    def test_a_hold_with_an_expiry_keeps_it(self, teller_api, funded_account):
        saver = funded_account("100.00")

        placed = post_json(
            teller_api,
            f"/api/v1/accounts/{saver.account_number}/holds",
            {"amount": "1.00", "currency": "USD", "reason": "lien", "expires_on": "2026-12-31"},
        )

        assert placed.status_code == 201, placed.content
        assert placed.json()["expires_on"] == "2026-12-31"

    def test_releasing_twice_is_a_conflict(self, teller_api, funded_account):
        saver = funded_account("100.00")
        hold = post_json(
            teller_api,
            f"/api/v1/accounts/{saver.account_number}/holds",
            {"amount": "60.00", "currency": "USD", "reason": "lien"},
        ).json()
        teller_api.post(f"/api/v1/holds/{hold['id']}/release", {}, format="json")

        response = teller_api.post(f"/api/v1/holds/{hold['id']}/release", {}, format="json")

        assert_problem(response, 409, "ledger.hold_not_active")
        assert available(saver) == "100.00"

    def test_a_hold_securing_an_entered_transfer_cannot_be_released_directly(
        self, teller_api, funded_account, open_account
    ):
        payer = funded_account("5000.00")
        require_approval_above_1000_usd()
        post_json(
            teller_api,
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": open_account().account_number,
                "amount": "1500.00",
                "currency": "USD",
            },
        )
        hold = Hold.objects.get(account=payer)

        response = teller_api.post(f"/api/v1/holds/{hold.pk}/release", {}, format="json")

        assert_problem(response, 409, "ledger.hold_not_active")
        assert available(payer) == "3500.00"

    def test_an_unknown_hold_is_not_found(self, teller_api, bank):
        response = teller_api.post("/api/v1/holds/987654/release", {}, format="json")

        assert_problem(response, 404, "ledger.hold_not_found")
