"""The admin side of the audit trail: no history admin reverts, the audit log admin is a
read-only window for auditors, supervisors and superusers, and admin requests are logged."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from audit.context import batch_context
from audit.models import AuditLog
from audit.services import audit_record
from banksim.core.money import Money
from fees import services as fee_services
from ledger import services as ledger_services
from ledger.models import ApprovalThreshold
from limits import services as limit_services
from limits.services import LimitRuleSpec
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def history_models() -> list:
    """Every model of the project that keeps simple-history."""
    return sorted(
        (
            model
            for model in apps.get_models()
            if hasattr(model, "history") and not model.__name__.startswith("Historical")
        ),
        key=lambda m: m._meta.label,
    )


@pytest.fixture
def superuser():
    return User.objects.create_superuser("root", "root@example.com", "pw-not-secret-123")


@pytest.fixture
def browser(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def one_of_each(bank, open_account, fee_rule, supervisor):
    """At least one history row for every model that keeps history."""
    account = open_account()
    now = timezone.now()
    cash = bank.office_account("teller_cash", "USD")
    ledger_services.movement_execute(
        movement=ledger_services.Movement(
            txn_type="cash_deposit",
            debit_account_id=cash.pk,
            credit_account_id=account.pk,
            amount=Money.parse("10.00", "USD"),
            channel="teller",
        ),
        actor=None,
        business_date=bank.business_date,
        now=now,
    )
    ledger_services.hold_place(
        account_id=account.pk,
        amount=Money.parse("1.00", "USD"),
        reason="cheque",
        expires_on=bank.business_date + dt.timedelta(days=1),
        actor=None,
        business_date=bank.business_date,
        now=now,
    )
    ApprovalThreshold.objects.create(currency="USD", amount_minor=1_000_000)
    fee_rule()
    fee_services.fee_waiver_create(
        account_id=account.pk,
        customer_id=None,
        event="",
        reason="staff",
        valid_from=bank.business_date,
        expires_on=bank.business_date + dt.timedelta(days=5),
        actor=supervisor,
        now=now,
    )
    limit_services.limit_rule_create(
        spec=LimitRuleSpec(currency="USD", max_count=3), actor=supervisor, now=now
    )


class TestHistoryIsNeverReverted:
    def test_every_model_with_history_has_a_history_admin(self):
        missing = [
            m._meta.label
            for m in history_models()
            if not hasattr(admin.site._registry.get(m), "history_form_view")
        ]

        assert missing == []

    def test_every_history_admin_refuses_a_revert_post_before_looking_anything_up(self, superuser):
        answers = {}
        for model in history_models():
            request = RequestFactory().post("/admin/revert", {})
            request.user = superuser
            try:
                admin.site._registry[model].history_form_view(request, "1", "1")
            except PermissionDenied:
                answers[model._meta.label] = "refused"
            else:
                answers[model._meta.label] = "accepted"

        assert answers == {label: "refused" for label in answers}
        assert len(answers) >= 9

    def test_a_revert_post_to_a_real_version_is_refused_and_changes_nothing(
        self, browser, one_of_each
    ):
        answers = {}
        for model in history_models():
            version = model.history.order_by("history_id").first()
            if version is None:  # a model this fixture does not build; the test above covers it
                continue
            url = _url(model, "simple_history", version.instance.pk, version.history_id)
            versions_before = model.history.filter(id=version.instance.pk).count()

            page = browser.get(url)
            revert = browser.post(url, {})

            answers[model._meta.label] = (page.status_code, revert.status_code)
            assert model.history.filter(id=version.instance.pk).count() == versions_before

        assert answers == {label: (200, 403) for label in answers}
        assert len(answers) >= 9


class TestAuditLogAdmin:
    @pytest.fixture
    def row(self):
        with batch_context("admin-test"), transaction.atomic():
            audit_record(action="test.visible", object_type="test", object_id="1")
        return AuditLog.objects.get(action="test.visible")

    def test_a_superuser_sees_the_list_filters_and_a_row_but_cannot_change_it(self, browser, row):
        listing = browser.get(_url(AuditLog, "changelist"), {"outcome__exact": "success"})
        page = browser.get(_url(AuditLog, "change", row.pk))
        change = browser.post(_url(AuditLog, "change", row.pk), {"actor": "forged"})
        delete = browser.get(_url(AuditLog, "delete", row.pk))
        add = browser.get(_url(AuditLog, "add"))

        assert listing.status_code == 200 and b"test.visible" in listing.content
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert (change.status_code, delete.status_code, add.status_code) == (403, 403, 403)
        row.refresh_from_db()
        assert row.actor == "system:admin-test"

    def test_bulk_delete_is_not_offered(self, browser, row):
        browser.post(
            _url(AuditLog, "changelist"),
            {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
        )

        assert AuditLog.objects.filter(pk=row.pk).exists()

    @pytest.mark.parametrize(("role", "status"), [("auditor", 200), ("teller", 403)])
    def test_staff_auditors_may_read_it_and_tellers_may_not(self, client, row, role, status):
        staff = UserFactory(username=f"staff-{role}", roles=[role])
        staff.is_staff = True
        staff.save()
        client.force_login(staff)

        response = client.get(_url(AuditLog, "changelist"))

        assert response.status_code == status

    def test_an_admin_request_is_recorded_with_the_admin_channel(self, browser):
        response = browser.get(_url(AuditLog, "changelist"), HTTP_X_REQUEST_ID="admin-req-1")

        [row] = AuditLog.objects.filter(request_id="admin-req-1")
        assert response["X-Request-ID"] == "admin-req-1"
        assert (row.channel, row.actor, row.role, row.status_code) == (
            "admin",
            "root",
            "superuser",
            200,
        )
