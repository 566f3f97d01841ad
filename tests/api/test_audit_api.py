"""The audit trail through the real view stack: one request row per API call, decision rows in
the same transaction as the change, the auditor's read API and who may use it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from audit.context import batch_context
from audit.models import AuditLog
from audit.services import audit_record
from banksim.core.money import Money
from ledger.models import Entry
from tests.api.ledger_support import assert_problem, post_json, seat
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def request_rows(request_id: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(request_id=request_id).order_by("id"))


def transfer_body(payer, payee, amount: str) -> dict[str, str]:
    return {
        "debit_account": payer.account_number,
        "credit_account": payee.account_number,
        "amount": amount,
        "currency": "USD",
    }


@pytest.fixture
def teller_api(bank, make_client, teller):
    seat(teller, bank.branch)
    return make_client(teller)


@pytest.fixture
def auditor_api(make_client, auditor):
    return make_client(auditor)


class TestRequestRows:
    def test_a_read_writes_exactly_one_request_row_with_who_and_where(
        self, teller_api, open_account
    ):
        account = open_account()

        response = teller_api.get(
            f"/api/v1/accounts/{account.account_number}",
            HTTP_X_REQUEST_ID="client-req-1",
            REMOTE_ADDR="10.1.2.3",
        )

        assert response.status_code == 200
        assert response["X-Request-ID"] == "client-req-1"
        [row] = request_rows("client-req-1")
        assert (row.kind, row.channel, row.actor, row.role) == (
            "request",
            "api",
            "teller1",
            "teller",
        )
        assert row.action == f"GET /api/v1/accounts/{account.account_number}"
        assert (row.object_type, row.object_id) == ("account", account.account_number)
        assert (row.outcome, row.status_code, row.error_code) == ("success", 200, "")
        assert row.source_ip == "10.1.2.3"

    def test_without_a_client_request_id_one_is_generated_and_echoed(self, teller_api):
        response = teller_api.get("/api/v1/branches")

        request_id = response["X-Request-ID"]
        assert len(request_id) == 32
        assert [r.action for r in request_rows(request_id)] == ["GET /api/v1/branches"]

    def test_a_malformed_client_request_id_is_replaced(self, teller_api):
        response = teller_api.get("/api/v1/branches", HTTP_X_REQUEST_ID="bad id; drop table")

        assert response["X-Request-ID"] != "bad id; drop table"
        assert len(request_rows(response["X-Request-ID"])) == 1

    def test_a_transfer_writes_a_request_row_and_a_posting_decision_row_with_one_request_id(
        self, teller_api, funded_account, open_account
    ):
        payer, payee = funded_account("100.00"), open_account()

        response = teller_api.post(
            "/api/v1/transfers",
            transfer_body(payer, payee, "40.00"),
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-audit-1",
            HTTP_X_REQUEST_ID="req-transfer-1",
        )

        assert response.status_code == 201, response.content
        txn_id = response.json()["txn_id"]
        decision, request = request_rows("req-transfer-1")
        assert (decision.kind, decision.action, decision.object_id) == (
            "decision",
            "transaction.posted",
            txn_id,
        )
        assert (decision.actor, decision.role, decision.outcome) == ("teller1", "teller", "success")
        assert decision.details == {
            "type": "transfer",
            "channel": "teller",
            "amount": "40.00",
            "currency": "USD",
            "debit_account": payer.account_number,
            "credit_account": payee.account_number,
        }
        assert (request.kind, request.action, request.status_code) == (
            "request",
            "POST /api/v1/transfers",
            201,
        )
        # The URL names no object: the request row shows the transaction it created.
        assert (request.object_type, request.object_id) == ("transaction", txn_id)

    def test_an_insufficient_funds_refusal_is_one_request_row_with_its_code_and_no_decision(
        self, teller_api, funded_account, open_account
    ):
        payer, payee = funded_account("10.00"), open_account()

        response = post_json(teller_api, "/api/v1/transfers", transfer_body(payer, payee, "99.00"))

        assert_problem(response, 422, "ledger.insufficient_funds")
        [row] = request_rows(response["X-Request-ID"])
        assert (row.kind, row.outcome, row.status_code, row.error_code) == (
            "request",
            "refused",
            422,
            "ledger.insufficient_funds",
        )
        assert (row.object_type, row.object_id) == ("", "")

    def test_an_idempotent_replay_is_recorded_as_a_replay_without_a_second_decision(
        self, teller_api, funded_account, open_account
    ):
        payer, payee = funded_account("100.00"), open_account()
        body = transfer_body(payer, payee, "5.00")
        first = post_json(teller_api, "/api/v1/transfers", body, key="k-replay")

        again = post_json(teller_api, "/api/v1/transfers", body, key="k-replay")

        assert again.status_code == 201
        txn_id = first.json()["txn_id"]
        assert AuditLog.objects.filter(kind="decision", object_id=txn_id).count() == 1
        [replay] = request_rows(again["X-Request-ID"])
        assert replay.details == {"replayed": True}

    def test_an_anonymous_call_is_recorded_as_refused_with_its_code(self, make_client):
        response = make_client(None).get("/api/v1/branches")

        [row] = request_rows(response["X-Request-ID"])
        assert (row.actor, row.role, row.status_code, row.error_code) == (
            "",
            "none",
            401,
            "auth.not_authenticated",
        )

    def test_an_unknown_url_is_recorded_with_the_404_problem_code(self, teller_api):
        response = teller_api.get("/api/v1/no-such-thing")

        [row] = request_rows(response["X-Request-ID"])
        assert (row.outcome, row.status_code, row.error_code) == ("refused", 404, "not_found")

    def test_a_teller_may_not_read_the_audit_log_and_that_refusal_is_itself_logged(
        self, teller_api
    ):
        response = teller_api.get("/api/v1/audit-log")

        assert_problem(response, 403, "auth.forbidden")
        [row] = request_rows(response["X-Request-ID"])
        assert (row.action, row.actor, row.error_code) == (
            "GET /api/v1/audit-log",
            "teller1",
            "auth.forbidden",
        )


class TestDecisionRows:
    def test_customer_kyc_account_and_freeze_decisions_are_recorded_by_the_supervisor(
        self, bank, make_client, supervisor
    ):
        api = make_client(supervisor)
        created = api.post(
            "/api/v1/customers",
            {
                "customer_type": "individual",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "birth_date": "1990-01-01",
                "national_id_type": "passport",
                "national_id": "AUD-0001",
                "home_branch": "0001",
            },
            format="json",
        )
        cif_id = created.json()["cif_id"]
        api.post(
            f"/api/v1/customers/{cif_id}/kyc",
            {"status": "verified", "reason": "documents seen"},
            format="json",
        )
        opened = api.post(
            "/api/v1/accounts",
            {"customer": cif_id, "product": "SBA-USD", "branch": "0001"},
            format="json",
        )
        number = opened.json()["account_number"]

        api.post(
            f"/api/v1/accounts/{number}/freeze",
            {"freeze_type": "debit", "reason": "court order"},
            format="json",
        )

        decisions = AuditLog.objects.filter(kind="decision", actor="super1").order_by("id")
        assert [(d.action, d.object_id) for d in decisions] == [
            ("customer.created", cif_id),
            ("customer.kyc_decided", cif_id),
            ("account.opened", number),
            ("account.frozen", number),
        ]
        assert {d.role for d in decisions} == {"supervisor"}
        assert decisions.get(action="account.frozen").details == {
            "freeze_type": "debit",
            "reason": "court order",
        }

    def test_a_posting_decision_exists_exactly_when_its_journal_does(
        self, bank, funded_account, open_account, monkeypatch
    ):
        """The decision row is written inside the posting's transaction: a failure after it
        rolls back the journal and the row together; without the failure both commit."""
        from ledger import services as ledger_services
        from ledger.services import Movement, movement_execute

        payer, payee = funded_account("100.00"), open_account()
        original = ledger_services.audit_object_note

        # Runs once the posting statement has written the journal and its decision row.
        def record_then_fail(*args, **kwargs):
            original(*args, **kwargs)
            raise RuntimeError("the posting fails after its audit row was written")

        def post():
            return movement_execute(
                movement=Movement(
                    txn_type="transfer",
                    debit_account_id=payer.pk,
                    credit_account_id=payee.pk,
                    amount=Money.parse("7.00", "USD"),
                    channel="teller",
                ),
                actor=None,
                business_date=bank.business_date,
                now=timezone.now(),
            )

        def decisions():
            return AuditLog.objects.filter(
                action="transaction.posted", details__credit_account=payee.account_number
            )

        monkeypatch.setattr(ledger_services, "audit_object_note", record_then_fail)
        with pytest.raises(RuntimeError):
            post()

        assert not Entry.objects.filter(account=payee).exists()
        assert not decisions().exists()

        monkeypatch.setattr(ledger_services, "audit_object_note", original)
        result = post()

        assert [d.object_id for d in decisions()] == [result.journal.txn_id]
        assert Entry.objects.filter(account=payee, journal_id=result.journal.pk).exists()

    def test_a_batch_job_records_its_decisions_as_the_system(self, bank, open_account):
        account = open_account()

        with batch_context("eod") as context, transaction.atomic():
            audit_record(action="account.dormant", object_type="account", object_id=account.pk)

        [row] = AuditLog.objects.filter(request_id=context.request_id)
        assert (row.actor, row.role, row.channel) == ("system:eod", "system", "batch")


class TestAuditLogApi:
    @pytest.fixture
    def trail(self, teller_api, funded_account, open_account):
        """A success and a refusal by the teller, each with its request id."""
        payer, payee = funded_account("50.00"), open_account()
        posted = post_json(teller_api, "/api/v1/transfers", transfer_body(payer, payee, "20.00"))
        refused = post_json(teller_api, "/api/v1/transfers", transfer_body(payer, payee, "90.00"))
        return {"posted": posted, "refused": refused, "payer": payer}

    def test_filters_by_actor_outcome_and_code(self, auditor_api, trail):
        response = auditor_api.get(
            "/api/v1/audit-log", {"actor": "teller1", "outcome": "refused", "limit": 100}
        )

        assert response.status_code == 200, response.content
        body = response.json()
        assert [r["request_id"] for r in body["results"]] == [trail["refused"]["X-Request-ID"]]
        assert body["results"][0]["error_code"] == "ledger.insufficient_funds"
        by_code = auditor_api.get("/api/v1/audit-log", {"code": "ledger.insufficient_funds"})
        assert by_code.json()["count"] == 1

    def test_filters_decisions_by_action_prefix_and_object(self, auditor_api, trail):
        txn_id = trail["posted"].json()["txn_id"]

        response = auditor_api.get(
            "/api/v1/audit-log",
            {"action": "transaction.*", "object": f"transaction:{txn_id}", "kind": "decision"},
        )

        [row] = response.json()["results"]
        assert (row["action"], row["object_id"], row["actor"]) == (
            "transaction.posted",
            txn_id,
            "teller1",
        )

    def test_filters_by_time_range_newest_first(self, auditor_api, trail):
        today = timezone.now().date()
        tomorrow = today + dt.timedelta(days=1)

        in_range = auditor_api.get(
            "/api/v1/audit-log", {"actor": "teller1", "from": str(today), "to": str(today)}
        ).json()
        later = auditor_api.get(
            "/api/v1/audit-log", {"actor": "teller1", "from": f"{tomorrow}T00:00:00Z"}
        ).json()

        ids = [r["id"] for r in in_range["results"]]
        assert len(ids) >= 3 and ids == sorted(ids, reverse=True)
        assert later["count"] == 0

    def test_pages_with_limit_and_offset(self, auditor_api, trail):
        first = auditor_api.get("/api/v1/audit-log", {"actor": "teller1", "limit": 1}).json()
        second = auditor_api.get(
            "/api/v1/audit-log", {"actor": "teller1", "limit": 1, "offset": 1}
        ).json()

        assert first["count"] == second["count"] >= 3
        assert first["results"][0]["id"] > second["results"][0]["id"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"outcome": "maybe"}, "outcome"),
            ({"from": "30/11/2026"}, "from"),
            ({"from": "2026-11-30", "to": "2026-11-01"}, "to"),
            ({"object": "account:0001; DROP"}, "object"),
            ({"limit": "1000"}, "limit"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_bad_filters_are_refused(self, auditor_api, params, field):
        response = auditor_api.get("/api/v1/audit-log", params)

        assert_problem(response, 400, "validation_error", field)


class TestHistoryApi:
    def test_a_customer_history_shows_each_version_with_user_reason_and_changes(
        self, bank, make_client, supervisor, auditor_api
    ):
        api = make_client(supervisor)
        created = api.post(
            "/api/v1/customers",
            {
                "customer_type": "individual",
                "first_name": "Grace",
                "last_name": "Hopper",
                "birth_date": "1980-12-09",
                "national_id_type": "passport",
                "national_id": "AUD-0002",
                "home_branch": "0001",
            },
            format="json",
        )
        cif_id = created.json()["cif_id"]
        api.patch(f"/api/v1/customers/{cif_id}", {"email": "grace@example.com"}, format="json")

        response = auditor_api.get(f"/api/v1/history/customer/{cif_id}")

        assert response.status_code == 200, response.content
        changed, created_version = response.json()["results"]
        assert (changed["type"], changed["user"], changed["change_reason"]) == (
            "changed",
            "super1",
            "customer details changed",
        )
        assert changed["changes"] == [{"field": "email", "old": "", "new": "grace@example.com"}]
        assert (created_version["type"], created_version["change_reason"]) == (
            "created",
            "customer created",
        )
        assert created_version["values"]["cif_id"] == cif_id

    def test_a_hold_history_gets_a_reason_naming_the_request(
        self, teller_api, auditor_api, funded_account
    ):
        account = funded_account("100.00")
        placed = post_json(
            teller_api,
            f"/api/v1/accounts/{account.account_number}/holds",
            {"amount": "10.00", "currency": "USD", "reason": "cheque"},
        )
        hold_id = placed.json()["id"]

        response = auditor_api.get(f"/api/v1/history/hold/{hold_id}")

        [version] = response.json()["results"]
        assert version["user"] == "teller1"
        assert version["change_reason"] == (
            f"created by POST /api/v1/accounts/{account.account_number}/holds "
            f"[request {placed['X-Request-ID']}]"
        )

    def test_an_unknown_model_and_an_unknown_object_are_404s_with_their_codes(self, auditor_api):
        assert_problem(
            auditor_api.get("/api/v1/history/journal/1"), 404, "audit.history_model_unknown"
        )
        assert_problem(
            auditor_api.get("/api/v1/history/customer/C999999999"),
            404,
            "audit.history_not_found",
        )
        assert_problem(
            auditor_api.get("/api/v1/history/fee_rule/abc"), 404, "audit.history_not_found"
        )


class TestPermissions:
    @pytest.mark.parametrize("path", ["/api/v1/audit-log", "/api/v1/history/customer/C000000001"])
    @pytest.mark.parametrize(
        ("caller", "status", "code"),
        [
            ("teller", 403, "auth.forbidden"),
            ("no_role", 403, "auth.forbidden"),
            ("anonymous", 401, "auth.not_authenticated"),
        ],
    )
    def test_only_auditors_and_supervisors_may_read(self, make_client, path, caller, status, code):
        users = {
            "teller": UserFactory(username="t-perm", roles=["teller"]),
            "no_role": UserFactory(username="n-perm", roles=[]),
            "anonymous": None,
        }

        response = make_client(users[caller]).get(path)

        assert_problem(response, status, code)

    @pytest.mark.parametrize("role", ["auditor", "supervisor"])
    def test_auditors_and_supervisors_may_read_the_log(self, make_client, role):
        reader = UserFactory(username=f"{role}-reader", roles=[role])

        response = make_client(reader).get("/api/v1/audit-log")

        assert response.status_code == 200

    @pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
    def test_nobody_can_write_the_log_through_the_api(self, make_client, auditor, method):
        response = getattr(make_client(auditor), method)("/api/v1/audit-log", {}, format="json")

        assert_problem(response, 403, "auth.forbidden")
