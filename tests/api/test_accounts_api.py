"""Account endpoints: open, list, read with balances, freeze, unfreeze, close."""

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import Account, Customer
from banksim.core.money import Money
from ledger import services as ledger_services
from tests.api.accounts_support import assert_problem
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ACCOUNTS = "/api/v1/accounts"


@pytest.fixture
def teller_client(make_client, teller):
    return make_client(teller)


@pytest.fixture
def supervisor_client(make_client, supervisor):
    return make_client(supervisor)


@pytest.fixture
def holder(bank):
    return CustomerFactory(home_branch=bank.branch, first_name="Ngozi", last_name="Adeyemi")


def _freeze(account, actor, freeze_type="total"):
    services.account_freeze(
        account_id=account.pk,
        freeze_type=freeze_type,
        reason="set up by test",
        actor=actor,
        now=timezone.now(),
    )


def _numbers(response):
    assert response.status_code == 200, response.content
    return [row["account_number"] for row in response.json()["results"]]


class TestAccountOpen:
    def test_opens_a_zero_balance_account_for_a_verified_customer(
        self, bank, holder, teller, teller_client
    ):
        response = teller_client.post(
            ACCOUNTS,
            {"customer": holder.cif_id, "product": "SBA-USD", "branch": "0001"},
            format="json",
        )

        assert response.status_code == 201, response.content
        body = response.json()
        account = Account.objects.get(account_number=body["account_number"])
        assert services.account_number_is_valid(body["account_number"])
        assert account.customer == holder
        assert account.status_changed_by == teller
        assert body["customer"] == holder.cif_id
        assert body["product"] == "SBA-USD"
        assert body["branch"] == "0001"
        assert body["kind"] == "customer"
        assert body["status"] == "active"
        assert body["title"] == "Ngozi Adeyemi"
        assert body["opened_on"] == bank.business_date.isoformat()
        assert body["closed_on"] is None
        assert body["currency"] == "USD"
        assert (body["ledger_balance"], body["held_balance"], body["available_balance"]) == (
            "0.00",
            "0.00",
            "0.00",
        )

    def test_uses_the_title_given(self, bank, holder, teller_client):
        response = teller_client.post(
            ACCOUNTS,
            {
                "customer": holder.cif_id,
                "product": "CAA-JPY",
                "branch": "0001",
                "title": "Ngozi - yen float",
            },
            format="json",
        )

        assert response.status_code == 201, response.content
        assert response.json()["title"] == "Ngozi - yen float"
        assert response.json()["currency"] == "JPY"
        assert response.json()["available_balance"] == "50000"

    def test_refuses_a_customer_whose_kyc_is_not_verified(self, bank, teller_client):
        pending = CustomerFactory(
            home_branch=bank.branch, kyc_status=Customer.KycStatus.PENDING, kyc_verified_on=None
        )

        response = teller_client.post(
            ACCOUNTS,
            {"customer": pending.cif_id, "product": "SBA-USD", "branch": "0001"},
            format="json",
        )

        assert_problem(response, 422, "customer.kyc_not_verified")
        assert not Account.objects.filter(customer=pending).exists()

    def test_refuses_an_office_product(self, bank, holder, teller_client):
        response = teller_client.post(
            ACCOUNTS,
            {"customer": holder.cif_id, "product": "OAB-USD", "branch": "0001"},
            format="json",
        )

        assert_problem(response, 422, "product.not_openable")
        assert not Account.objects.filter(customer=holder).exists()

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("customer", "C999999999", "customer.not_found"),
            ("product", "SBA-XXX", "product.not_found"),
            ("branch", "9999", "branch.not_found"),
        ],
    )
    def test_answers_not_found_for_unknown_references(
        self, bank, holder, teller_client, field, value, code
    ):
        payload = {"customer": holder.cif_id, "product": "SBA-USD", "branch": "0001"}
        payload[field] = value

        response = teller_client.post(ACCOUNTS, payload, format="json")

        assert_problem(response, 404, code)
        assert not Account.objects.filter(customer=holder).exists()


class TestAccountList:
    def test_filters_by_customer_status_and_product(
        self, bank, holder, open_account, supervisor, make_client, auditor
    ):
        savings = open_account("SBA-USD", customer=holder)
        current = open_account("CAA-USD", customer=holder)
        someone_elses = open_account("SBA-USD")
        _freeze(current, supervisor)
        client = make_client(auditor)

        mine = client.get(ACCOUNTS, {"customer": holder.cif_id})
        frozen = client.get(ACCOUNTS, {"customer": holder.cif_id, "status": "frozen"})
        savings_only = client.get(ACCOUNTS, {"customer": holder.cif_id, "product": "SBA-USD"})
        all_savings = client.get(ACCOUNTS, {"product": "SBA-USD"})

        assert _numbers(mine) == [savings.account_number, current.account_number]
        assert mine.json()["count"] == 2
        assert _numbers(frozen) == [current.account_number]
        assert _numbers(savings_only) == [savings.account_number]
        assert _numbers(all_savings) == [savings.account_number, someone_elses.account_number]

    def test_lists_nothing_for_a_customer_without_accounts(self, bank, holder, teller_client):
        response = teller_client.get(ACCOUNTS, {"customer": holder.cif_id})

        assert response.json() == {"count": 0, "limit": 20, "offset": 0, "results": []}

    def test_pages_the_results(self, bank, holder, open_account, teller_client):
        opened = [open_account("SBA-USD", customer=holder) for _ in range(3)]

        response = teller_client.get(
            ACCOUNTS, {"customer": holder.cif_id, "limit": "2", "offset": "1"}
        )

        assert response.json()["count"] == 3
        assert [r["account_number"] for r in response.json()["results"]] == [
            a.account_number for a in opened[1:]
        ]


class TestAccountDetail:
    def test_shows_ledger_held_and_available_balances_as_strings(
        self, bank, funded_account, make_client, auditor
    ):
        account = funded_account("250.00")
        ledger_services.hold_place(
            account_id=account.pk,
            amount=Money.parse("50.00", "USD"),
            reason="card authorisation",
            expires_on=None,
            actor=None,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        response = make_client(auditor).get(f"{ACCOUNTS}/{account.account_number}")

        assert response.status_code == 200
        body = response.json()
        assert body["account_number"] == account.account_number
        assert body["ledger_balance"] == "250.00"
        assert body["held_balance"] == "50.00"
        assert body["available_balance"] == "200.00"
        assert body["currency"] == "USD"

    def test_counts_the_overdraft_in_the_available_balance(
        self, bank, funded_account, teller_client
    ):
        account = funded_account("10.00", product_code="CAA-USD")

        response = teller_client.get(f"{ACCOUNTS}/{account.account_number}")

        assert response.json()["ledger_balance"] == "10.00"
        assert response.json()["available_balance"] == "50010.00"

    def test_shows_an_office_account_without_a_customer(self, bank, teller_client):
        till = bank.office_account("teller_cash", "KWD")

        response = teller_client.get(f"{ACCOUNTS}/{till.account_number}")

        assert response.status_code == 200
        assert response.json()["kind"] == "office"
        assert response.json()["customer"] is None
        assert response.json()["office_role"] == "teller_cash"
        assert response.json()["ledger_balance"] == "0.000"

    @pytest.mark.parametrize("number", ["000100000000", "12345", "٠٠٠١٠٠٠٠٠١٨١", "abc"])
    def test_answers_account_not_found_for_unknown_or_malformed_numbers(
        self, bank, teller_client, number
    ):
        response = teller_client.get(f"{ACCOUNTS}/{number}")

        assert_problem(response, 404, "account.not_found")


class TestAccountFreeze:
    def test_freezes_an_active_account(self, bank, open_account, supervisor, supervisor_client):
        account = open_account()

        response = supervisor_client.post(
            f"{ACCOUNTS}/{account.account_number}/freeze",
            {"freeze_type": "debit", "reason": "court order 12/2026"},
            format="json",
        )

        assert response.status_code == 200, response.content
        assert response.json()["status"] == "frozen"
        assert response.json()["freeze_type"] == "debit"
        assert response.json()["status_reason"] == "court order 12/2026"
        account.refresh_from_db()
        assert account.status == Account.Status.FROZEN
        assert account.status_changed_by == supervisor

    def test_refuses_to_freeze_a_frozen_account(
        self, bank, open_account, supervisor, supervisor_client
    ):
        account = open_account()
        _freeze(account, supervisor, freeze_type="credit")

        response = supervisor_client.post(
            f"{ACCOUNTS}/{account.account_number}/freeze",
            {"freeze_type": "total", "reason": "second order"},
            format="json",
        )

        assert_problem(response, 422, "account.status_transition_invalid")
        account.refresh_from_db()
        assert account.freeze_type == "credit"

    def test_does_not_serve_office_accounts(self, bank, supervisor_client):
        till = bank.office_account("teller_cash", "USD")

        response = supervisor_client.post(
            f"{ACCOUNTS}/{till.account_number}/freeze",
            {"freeze_type": "total", "reason": "no"},
            format="json",
        )

        assert_problem(response, 404, "account.not_found")
        till.refresh_from_db()
        assert till.status == Account.Status.ACTIVE


class TestAccountUnfreeze:
    def test_lifts_a_freeze(self, bank, open_account, supervisor, supervisor_client):
        account = open_account()
        _freeze(account, supervisor)

        response = supervisor_client.post(
            f"{ACCOUNTS}/{account.account_number}/unfreeze",
            {"reason": "order lifted"},
            format="json",
        )

        assert response.status_code == 200, response.content
        assert response.json()["status"] == "active"
        assert response.json()["freeze_type"] == ""
        account.refresh_from_db()
        assert account.status == Account.Status.ACTIVE

    def test_refuses_an_account_that_is_not_frozen(self, bank, open_account, supervisor_client):
        account = open_account()

        response = supervisor_client.post(
            f"{ACCOUNTS}/{account.account_number}/unfreeze", {"reason": "?"}, format="json"
        )

        assert_problem(response, 422, "account.status_transition_invalid")


class TestAccountClose:
    def test_closes_a_zero_balance_account_on_the_business_date(
        self, bank, open_account, teller, teller_client
    ):
        account = open_account()

        response = teller_client.post(
            f"{ACCOUNTS}/{account.account_number}/close",
            {"reason": "customer request"},
            format="json",
        )

        assert response.status_code == 200, response.content
        assert response.json()["status"] == "closed"
        assert response.json()["closed_on"] == bank.business_date.isoformat()
        account.refresh_from_db()
        assert account.status == Account.Status.CLOSED
        assert account.status_changed_by == teller

    def test_refuses_an_already_closed_account(self, bank, open_account, teller, teller_client):
        account = open_account()
        services.account_close(
            account_id=account.pk,
            reason="first close",
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        response = teller_client.post(
            f"{ACCOUNTS}/{account.account_number}/close", {"reason": "again"}, format="json"
        )

        assert_problem(response, 422, "account.status_transition_invalid")
        account.refresh_from_db()
        assert account.status_reason == "first close"

    def test_refuses_an_account_with_money_in_it(self, bank, funded_account, teller_client):
        account = funded_account("0.01")

        response = teller_client.post(
            f"{ACCOUNTS}/{account.account_number}/close", {"reason": "leaving"}, format="json"
        )

        assert_problem(response, 422, "account.balance_not_zero")
        account.refresh_from_db()
        assert account.status == Account.Status.ACTIVE

    def test_refuses_a_frozen_account(self, bank, open_account, supervisor, teller_client):
        account = open_account()
        _freeze(account, supervisor)

        response = teller_client.post(
            f"{ACCOUNTS}/{account.account_number}/close", {"reason": "leaving"}, format="json"
        )

        assert_problem(response, 422, "account.status_transition_invalid")
        account.refresh_from_db()
        assert account.status == Account.Status.FROZEN
