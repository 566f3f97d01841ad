"""EOD in the admin and on the command line: progress, report downloads, starting a run."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from eod import tasks
from eod.models import EodRun
from eod.services import eod_run

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)


@pytest.fixture
def browser(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123-abc"))
    return client


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tasks.eod_run_task, "apply_async", lambda **kw: sent.append(kw))
    return sent


class TestEodAdmin:
    def test_the_run_list_and_a_run_page_show_each_step_and_its_progress(
        self, bank, browser, funded_account
    ):
        funded_account("10.00")
        run = eod_run(calendar_code="MAIN", now=NOW, stop_after="holds_and_dormancy")

        listing = browser.get(reverse("admin:eod_eodrun_changelist"))
        page = browser.get(reverse("admin:eod_eodrun_change", args=[run.pk]))

        assert listing.status_code == 200
        assert "5/7 done; integrity_gate pending" in listing.content.decode()
        assert page.status_code == 200
        assert "holds_and_dormancy" in page.content.decode()
        assert "written when the day closes" in page.content.decode()

    def test_reports_of_a_closed_day_download_as_csv(self, bank, browser, funded_account):
        funded_account("10.00")
        run = eod_run(calendar_code="MAIN", now=NOW)

        response = browser.get(reverse("admin:eod_eodrun_report", args=[run.pk, "trial_balance"]))

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "eod-2026-11-30-trial_balance.csv" in response["Content-Disposition"]
        assert response.content.decode().startswith("currency,gl_subhead,name,category")
        assert "USD,TOTAL,,,10.00,10.00,0.00" in response.content.decode()

    def test_start_eod_asks_for_confirmation_then_requests_the_run(
        self, bank, browser, enqueued, django_capture_on_commit_callbacks
    ):
        confirm = browser.get(reverse("admin:eod_eodrun_start"))
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(reverse("admin:eod_eodrun_start"))

        assert confirm.status_code == 200
        assert "2026-11-30" in confirm.content.decode()
        run = EodRun.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:eod_eodrun_change", args=[run.pk])
        assert enqueued == [{"kwargs": {"calendar_code": "MAIN"}}]

    def test_staff_without_the_supervisor_role_cannot_start_eod(self, bank, client, enqueued):
        staff = User.objects.create_user("clerk", password="pw-123-abc", is_staff=True)
        client.force_login(staff)

        response = client.post(reverse("admin:eod_eodrun_start"))

        assert response.status_code == 403
        assert enqueued == []


class TestEodCommand:
    def test_prints_progress_lines_and_a_summary_table(self, bank, funded_account):
        funded_account("10.00")
        out = StringIO()

        call_command("eod_run", stdout=out)

        text = out.getvalue()
        assert "holds_and_dormancy  2/2  100%" in text
        assert "rows/s" in text
        assert "EOD 2026-11-30: done" in text
        assert "close_day" in text.split("EOD 2026-11-30: done")[1]

    def test_exits_non_zero_when_the_day_is_blocked(self, bank, funded_account):
        saver = funded_account("10.00")
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET ledger_minor = ledger_minor + 1 WHERE account_id = %s",
                [saver.pk],
            )

        with pytest.raises(CommandError, match="EOD blocked: integrity_gate"):
            call_command("eod_run", stdout=StringIO())
