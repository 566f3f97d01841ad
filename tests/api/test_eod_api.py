"""The EOD API: who may start and watch end of day, and teller postings refused while it runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User

from accounts.models import Calendar
from eod import tasks
from eod.models import EodRun
from eod.services import eod_run
from tests.api.ledger_support import assert_problem, post_json, seat
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Record the eod.run tasks sent instead of talking to a broker."""
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tasks.eod_run_task, "apply_async", lambda **kw: sent.append(kw))
    return sent


@pytest.fixture
def caller(request, make_client, teller, supervisor, auditor):
    def _client(role: str):
        users = {"teller": teller, "supervisor": supervisor, "auditor": auditor}
        if role == "anonymous":
            return make_client(None)
        if role == "no_role":
            return make_client(UserFactory(username="nobody", roles=[]))
        return make_client(users[role])

    return _client


class TestStartingEod:
    def test_a_supervisor_starts_eod_and_the_task_is_enqueued_on_commit(
        self, bank, caller, enqueued, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_json(caller("supervisor"), "/api/v1/eod/runs", {}, key=None)

        assert response.status_code == 202, response.content
        body = response.json()
        assert body["business_date"] == "2026-11-30"
        assert body["status"] == "running"
        assert [s["status"] for s in body["steps"]] == ["pending"] * 7
        assert response["Location"] == "/api/v1/eod/runs/2026-11-30"
        assert EodRun.objects.filter(pk=body["id"]).exists()
        assert enqueued == [{"kwargs": {"calendar_code": "MAIN"}}]

    @pytest.mark.parametrize("role", ["teller", "auditor", "no_role"])
    def test_other_roles_may_not_start_eod(self, bank, caller, enqueued, role):
        response = post_json(caller(role), "/api/v1/eod/runs", {}, key=None)

        assert_problem(response, 403, "auth.forbidden")
        assert not EodRun.objects.exists()
        assert enqueued == []

    def test_an_anonymous_caller_is_asked_to_authenticate(self, bank, caller, enqueued):
        response = post_json(caller("anonymous"), "/api/v1/eod/runs", {}, key=None)

        assert_problem(response, 401, "auth.not_authenticated")

    def test_unknown_fields_are_refused(self, bank, caller, enqueued):
        response = post_json(caller("supervisor"), "/api/v1/eod/runs", {"force": True}, key=None)

        assert_problem(response, 400, "validation_error")
        assert enqueued == []

    def test_the_task_runs_the_service_for_the_calendar(self, bank):
        tasks.eod_run_task(calendar_code="MAIN")

        run = EodRun.objects.get(business_date=DAY)
        assert run.status == "done", run.error


class TestWatchingEod:
    @pytest.mark.parametrize("role", ["teller", "supervisor", "auditor"])
    def test_every_role_sees_the_steps_and_their_progress(self, bank, caller, role):
        eod_run(calendar_code="MAIN", now=NOW, stop_after="interest")

        response = caller(role).get("/api/v1/eod/runs/2026-11-30")

        assert response.status_code == 200, response.content
        steps = {s["name"]: s for s in response.json()["steps"]}
        assert steps["preconditions"]["status"] == "done"
        assert steps["preconditions"]["percent"] == 100
        assert steps["close_day"]["status"] == "pending"
        assert response.json()["reports"] == []

    @pytest.mark.parametrize("role, status", [("anonymous", 401), ("no_role", 403)])
    def test_callers_without_a_bank_role_see_nothing(self, bank, caller, role, status):
        eod_run(calendar_code="MAIN", now=NOW)

        response = caller(role).get("/api/v1/eod/runs/2026-11-30")

        assert response.status_code == status

    def test_a_day_without_a_run_is_not_found(self, bank, caller):
        response = caller("auditor").get("/api/v1/eod/runs/2026-11-29")

        assert_problem(response, 404, "eod.run_not_found")

    def test_a_malformed_date_is_a_bad_request(self, bank, caller):
        response = caller("auditor").get("/api/v1/eod/runs/30-11-2026")

        assert response.status_code == 400

    def test_a_finished_run_lists_its_reports(self, bank, caller):
        eod_run(calendar_code="MAIN", now=NOW)

        response = caller("auditor").get("/api/v1/eod/runs/2026-11-30")

        assert response.json()["status"] == "done"
        assert "trial_balance" in response.json()["reports"]


class TestTellerPostingsDuringEod:
    def test_a_deposit_while_eod_runs_is_refused_with_409_and_posts_nothing(
        self, bank, teller: User, make_client, open_account
    ):
        seat(teller, bank.branch)
        saver = open_account("SBA-USD")
        Calendar.objects.filter(code="MAIN").update(day_state="eod_running")

        response = post_json(
            make_client(teller),
            "/api/v1/deposits",
            {"account": saver.account_number, "amount": "10.00", "currency": "USD"},
        )

        assert_problem(response, 409, "eod.day_not_open")
        assert not saver.entries.exists()

    def test_the_same_request_succeeds_once_the_next_day_opens(
        self, bank, teller: User, make_client, open_account
    ):
        seat(teller, bank.branch)
        saver = open_account("SBA-USD")
        client = make_client(teller)
        body = {"account": saver.account_number, "amount": "10.00", "currency": "USD"}
        Calendar.objects.filter(code="MAIN").update(day_state="eod_running")
        refused = post_json(client, "/api/v1/deposits", body, key="deposit-1")
        Calendar.objects.filter(code="MAIN").update(day_state="open")

        retried = post_json(client, "/api/v1/deposits", body, key="deposit-1")

        assert refused.status_code == 409
        assert retried.status_code == 201, retried.content
        assert saver.entries.count() == 1
