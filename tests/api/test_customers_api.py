"""Happy paths (and the domain refusals) of the CIF endpoints."""

import pytest

from accounts.models import Customer
from tests.api.accounts_support import assert_problem, customer_payload
from tests.factories import BUSINESS_DATE, BranchFactory, CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers"


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


class TestCustomerCreate:
    def test_creates_an_individual_in_kyc_pending_with_a_bank_assigned_cif_id(
        self, head_office, teller, teller_client
    ):
        payload = customer_payload()

        response = teller_client.post(CUSTOMERS, payload, format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        customer = Customer.objects.get(cif_id=body["cif_id"])
        assert body["cif_id"].startswith("C") and len(body["cif_id"]) == 10
        assert body["kyc_status"] == "pending"
        assert body["kyc_verified_on"] is None
        assert body["home_branch"] == "0001"
        assert body["display_name"] == "Amina Okafor"
        for field in ("first_name", "last_name", "national_id", "email", "phone", "address"):
            assert body[field] == payload[field]
        assert body["birth_date"] == "1990-04-12"
        assert body["risk_grade"] == "low" and body["segment"] == "retail"
        assert body["created_at"]
        assert customer.created_by == teller
        assert customer.history.count() == 1

    def test_creates_a_corporate_with_its_legal_name(self, head_office, teller_client):
        payload = customer_payload(
            customer_type="corporate",
            first_name="",
            last_name="",
            legal_name="Harbour Freight Ltd",
            national_id_type="company_registration",
            segment="corporate",
            risk_grade="medium",
        )

        response = teller_client.post(CUSTOMERS, payload, format="json")

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["display_name"] == "Harbour Freight Ltd"
        assert body["segment"] == "corporate"
        assert body["risk_grade"] == "medium"

    def test_refuses_an_individual_without_a_last_name(self, head_office, teller_client):
        payload = customer_payload(last_name="")
        before = Customer.objects.count()

        response = teller_client.post(CUSTOMERS, payload, format="json")

        assert_problem(response, 400, "customer.name_missing", field="first_name")
        assert Customer.objects.count() == before

    def test_refuses_an_unknown_home_branch(self, head_office, teller_client):
        payload = customer_payload(home_branch="9999")

        response = teller_client.post(CUSTOMERS, payload, format="json")

        assert_problem(response, 404, "branch.not_found")
        assert not Customer.objects.filter(national_id=payload["national_id"]).exists()


class TestCustomerList:
    @pytest.fixture
    def people(self, head_office):
        return {
            "ada": CustomerFactory(home_branch=head_office, first_name="Ada", last_name="Lovelace"),
            "adamu": CustomerFactory(
                home_branch=head_office,
                first_name="Adamu",
                last_name="Bello",
                kyc_status=Customer.KycStatus.PENDING,
                kyc_verified_on=None,
            ),
            "grace": CustomerFactory(
                home_branch=head_office, first_name="Grace", last_name="Hopper"
            ),
            "acme": CustomerFactory(
                home_branch=head_office,
                customer_type=Customer.CustomerType.CORPORATE,
                first_name="",
                last_name="",
                legal_name="Adanac Mining plc",
            ),
        }

    def _cif_ids(self, response):
        assert response.status_code == 200, response.content
        return [row["cif_id"] for row in response.json()["results"]]

    def test_finds_customers_by_a_case_insensitive_name_prefix(self, people, make_client, auditor):
        response = make_client(auditor).get(CUSTOMERS, {"q": "ADA"})

        found = self._cif_ids(response)
        assert set(found) == {people["ada"].cif_id, people["adamu"].cif_id, people["acme"].cif_id}

    def test_matches_last_names_too(self, people, teller_client):
        response = teller_client.get(CUSTOMERS, {"q": "hop"})

        assert self._cif_ids(response) == [people["grace"].cif_id]

    def test_filters_by_national_id_kyc_status_and_cif_id(self, people, teller_client):
        by_national_id = teller_client.get(CUSTOMERS, {"national_id": people["grace"].national_id})
        by_kyc = teller_client.get(CUSTOMERS, {"kyc_status": "pending", "q": "Ada"})
        by_cif = teller_client.get(CUSTOMERS, {"cif_id": people["acme"].cif_id})

        assert self._cif_ids(by_national_id) == [people["grace"].cif_id]
        assert self._cif_ids(by_kyc) == [people["adamu"].cif_id]
        assert self._cif_ids(by_cif) == [people["acme"].cif_id]

    def test_pages_with_limit_and_offset_and_reports_the_total(self, people, teller_client):
        ordered = sorted(c.cif_id for c in people.values())

        first = teller_client.get(CUSTOMERS, {"limit": "2"})
        second = teller_client.get(CUSTOMERS, {"limit": "2", "offset": "2"})

        assert first.json()["count"] == 4
        assert first.json()["limit"] == 2
        assert self._cif_ids(first) == ordered[:2]
        assert self._cif_ids(second) == ordered[2:]
        assert second.json()["offset"] == 2

    def test_refuses_a_page_larger_than_one_hundred(self, people, teller_client):
        response = teller_client.get(CUSTOMERS, {"limit": "101"})

        assert_problem(response, 400, "validation_error", field="limit")

    def test_treats_like_wildcards_in_q_literally(self, people, teller_client):
        response = teller_client.get(CUSTOMERS, {"q": "%"})

        assert self._cif_ids(response) == []


class TestCustomerDetail:
    def test_returns_the_customer(self, head_office, make_client, auditor):
        customer = CustomerFactory(home_branch=head_office, first_name="Chinua", last_name="Eze")

        response = make_client(auditor).get(f"{CUSTOMERS}/{customer.cif_id}")

        assert response.status_code == 200
        assert response.json()["cif_id"] == customer.cif_id
        assert response.json()["display_name"] == "Chinua Eze"
        assert response.json()["kyc_verified_on"] == BUSINESS_DATE.isoformat()

    @pytest.mark.parametrize("cif_id", ["C999999999", "c000000001", "C1", "x" * 300, "%00"])
    def test_answers_customer_not_found_for_unknown_or_malformed_ids(
        self, head_office, teller_client, cif_id
    ):
        response = teller_client.get(f"{CUSTOMERS}/{cif_id}")

        assert_problem(response, 404, "customer.not_found")


class TestCustomerUpdate:
    def test_changes_contact_details_risk_grade_and_segment(self, head_office, teller_client):
        customer = CustomerFactory(home_branch=head_office, email="old@example.com")
        changes = {
            "email": "new@example.com",
            "phone": "+1 555 0100",
            "address": "1 New Street",
            "risk_grade": "high",
            "segment": "premium",
        }

        response = teller_client.patch(f"{CUSTOMERS}/{customer.cif_id}", changes, format="json")

        assert response.status_code == 200, response.content
        customer.refresh_from_db()
        for field, value in changes.items():
            assert response.json()[field] == value
            assert getattr(customer, field) == value

    def test_changes_only_the_fields_sent(self, head_office, teller_client):
        customer = CustomerFactory(home_branch=head_office, phone="+44 20 7946 0000")

        response = teller_client.patch(
            f"{CUSTOMERS}/{customer.cif_id}", {"segment": "staff"}, format="json"
        )

        assert response.status_code == 200
        customer.refresh_from_db()
        assert customer.segment == "staff"
        assert customer.phone == "+44 20 7946 0000"

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("first_name", "Changed", "unknown_field"),
            ("national_id", "NEW123", "unknown_field"),
            ("kyc_status", "verified", "unknown_field"),
            ("cif_id", "C000000009", "server_owned"),
        ],
    )
    def test_refuses_identity_kyc_and_server_owned_fields(
        self, head_office, teller_client, field, value, code
    ):
        customer = CustomerFactory(home_branch=head_office, first_name="Kept")

        response = teller_client.patch(
            f"{CUSTOMERS}/{customer.cif_id}", {field: value, "segment": "sme"}, format="json"
        )

        body = assert_problem(response, 400, "validation_error", field=field)
        assert {"field": field, "code": code} in [
            {"field": e["field"], "code": e["code"]} for e in body["errors"]
        ]
        customer.refresh_from_db()
        assert customer.first_name == "Kept" and customer.segment == "retail"

    def test_refuses_an_empty_change(self, head_office, teller_client):
        customer = CustomerFactory(home_branch=head_office)

        response = teller_client.patch(f"{CUSTOMERS}/{customer.cif_id}", {}, format="json")

        assert_problem(response, 400, "validation_error")

    def test_answers_not_found_for_an_unknown_customer(self, head_office, teller_client):
        response = teller_client.patch(f"{CUSTOMERS}/C999999999", {"segment": "sme"}, format="json")

        assert_problem(response, 404, "customer.not_found")


class TestCustomerKyc:
    def test_verifies_a_pending_customer_on_the_business_date(
        self, head_office, supervisor, supervisor_client
    ):
        customer = CustomerFactory(
            home_branch=head_office, kyc_status=Customer.KycStatus.PENDING, kyc_verified_on=None
        )

        response = supervisor_client.post(
            f"{CUSTOMERS}/{customer.cif_id}/kyc",
            {"status": "verified", "reason": "passport and utility bill seen"},
            format="json",
        )

        assert response.status_code == 200, response.content
        assert response.json()["kyc_status"] == "verified"
        assert response.json()["kyc_verified_on"] == BUSINESS_DATE.isoformat()
        customer.refresh_from_db()
        assert customer.kyc_verified_by == supervisor
        assert customer.history.first().history_change_reason == "passport and utility bill seen"

    def test_rejects_a_pending_customer(self, head_office, supervisor_client):
        customer = CustomerFactory(
            home_branch=head_office, kyc_status=Customer.KycStatus.PENDING, kyc_verified_on=None
        )

        response = supervisor_client.post(
            f"{CUSTOMERS}/{customer.cif_id}/kyc",
            {"status": "rejected", "reason": "document forged"},
            format="json",
        )

        assert response.status_code == 200
        assert response.json()["kyc_status"] == "rejected"

    def test_refuses_a_transition_the_bank_does_not_allow(self, head_office, supervisor_client):
        verified = CustomerFactory(home_branch=head_office)

        response = supervisor_client.post(
            f"{CUSTOMERS}/{verified.cif_id}/kyc",
            {"status": "verified", "reason": "again"},
            format="json",
        )

        assert_problem(response, 422, "customer.kyc_transition_invalid")

    def test_refuses_pending_as_a_decision(self, head_office, supervisor_client):
        verified = CustomerFactory(home_branch=head_office)

        response = supervisor_client.post(
            f"{CUSTOMERS}/{verified.cif_id}/kyc",
            {"status": "pending", "reason": "reset"},
            format="json",
        )

        assert_problem(response, 400, "validation_error", field="status")
        verified.refresh_from_db()
        assert verified.kyc_status == "verified"

    def test_requires_a_reason(self, head_office, supervisor_client):
        customer = CustomerFactory(
            home_branch=head_office, kyc_status=Customer.KycStatus.PENDING, kyc_verified_on=None
        )

        response = supervisor_client.post(
            f"{CUSTOMERS}/{customer.cif_id}/kyc", {"status": "verified"}, format="json"
        )

        assert_problem(response, 400, "validation_error", field="reason")
        customer.refresh_from_db()
        assert customer.kyc_status == "pending"
