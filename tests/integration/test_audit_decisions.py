"""Every state-changing decision leaves one audit row in its own transaction, and every history
row carries who acted and why."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from django.utils import timezone

from accounts import services as account_services
from audit import context
from audit.models import AuditLog
from audit.signals import task_context_close, task_context_open
from banksim.core.money import Money
from fees import services as fee_services
from ledger import services as ledger_services
from ledger.models import ApprovalThreshold, Journal
from ledger.services import Movement
from limits import services as limit_services
from limits.services import LimitRuleChanges, LimitRuleSpec
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def decisions(object_type: str, object_id: object) -> list[tuple[str, str, str]]:
    """(action, actor, role) of the decisions recorded on one object, oldest first."""
    return list(
        AuditLog.objects.filter(kind="decision", object_type=object_type, object_id=str(object_id))
        .order_by("id")
        .values_list("action", "actor", "role")
    )


@pytest.fixture
def checker(db):
    return UserFactory(username="checker1", roles=["supervisor"])


def entered_transfer(bank, funded_account, open_account, maker):
    payer, payee = funded_account("5000.00"), open_account()
    ApprovalThreshold.objects.create(currency="USD", channel="teller", amount_minor=100_000)
    result = ledger_services.movement_execute(
        movement=Movement(
            txn_type="transfer",
            debit_account_id=payer.pk,
            credit_account_id=payee.pk,
            amount=Money.parse("1500.00", "USD"),
            channel="teller",
        ),
        actor=maker,
        business_date=bank.business_date,
        now=timezone.now(),
    )
    assert not result.posted
    return result.journal


class TestLedgerDecisions:
    def test_an_entered_then_approved_transfer_records_both_decisions_with_their_actors(
        self, bank, funded_account, open_account, supervisor, checker
    ):
        journal = entered_transfer(bank, funded_account, open_account, supervisor)

        ledger_services.journal_approve(
            journal_id=journal.pk,
            actor=checker,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        assert decisions("transaction", journal.txn_id) == [
            ("transaction.entered", "super1", "supervisor"),
            ("transaction.approved", "checker1", "supervisor"),
        ]
        # Its maker-checker hold is part of the entered row, not a decision of its own.
        assert not AuditLog.objects.filter(
            action="hold.placed", details__reason__contains=journal.txn_id
        )

    def test_a_rejection_records_its_reason(
        self, bank, funded_account, open_account, supervisor, checker
    ):
        journal = entered_transfer(bank, funded_account, open_account, supervisor)

        ledger_services.journal_reject(
            journal_id=journal.pk, reason="duplicate", actor=checker, now=timezone.now()
        )

        row = AuditLog.objects.get(action="transaction.rejected", object_id=journal.txn_id)
        assert (row.actor, row.details) == ("checker1", {"reason": "duplicate"})

    def test_a_reversal_is_recorded_on_the_original_and_names_the_reversal(
        self, bank, funded_account, supervisor
    ):
        saver = funded_account("100.00")
        original = Journal.objects.filter(entries__account=saver).get()

        reversal = ledger_services.journal_reverse(
            journal_id=original.pk,
            reason="wrong account",
            actor=supervisor,
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
        )

        row = AuditLog.objects.get(action="transaction.reversed", object_id=original.txn_id)
        assert row.details == {"reversal": reversal.txn_id, "reason": "wrong account"}

    def test_a_hold_placed_and_released_records_two_decisions(self, bank, funded_account, teller):
        account = funded_account("100.00")

        hold = ledger_services.hold_place(
            account_id=account.pk,
            amount=Money.parse("30.00", "USD"),
            reason="cheque",
            expires_on=bank.business_date + dt.timedelta(days=2),
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        )
        ledger_services.hold_release(hold_id=hold.pk, actor=teller, now=timezone.now())

        assert decisions("hold", hold.pk) == [
            ("hold.placed", "teller1", "teller"),
            ("hold.released", "teller1", "teller"),
        ]


class TestAccountsDecisions:
    def test_unfreeze_close_and_detail_changes_are_recorded(self, open_account, supervisor):
        account = open_account()
        now = timezone.now()
        account_services.account_freeze(
            account_id=account.pk, freeze_type="total", reason="check", actor=supervisor, now=now
        )
        account_services.account_unfreeze(
            account_id=account.pk, reason="cleared", actor=supervisor, now=now
        )
        account_services.account_close(
            account_id=account.pk,
            reason="customer left",
            actor=supervisor,
            business_date=account.opened_on,
            now=now,
        )
        account_services.customer_update(
            customer_id=account.customer_id, changes={"phone": "+1 555"}, actor=supervisor
        )

        assert [a for a, _, _ in decisions("account", account.account_number)] == [
            "account.opened",
            "account.frozen",
            "account.unfrozen",
            "account.closed",
        ]
        cif_id = account.customer.cif_id
        assert decisions("customer", cif_id)[-1] == ("customer.updated", "super1", "supervisor")

    def test_a_refused_decision_leaves_no_row(self, open_account, supervisor):
        account = open_account()

        with pytest.raises(account_services.AccountStatusInvalid):
            account_services.account_unfreeze(
                account_id=account.pk, reason="not frozen", actor=supervisor, now=timezone.now()
            )

        assert [a for a, _, _ in decisions("account", account.account_number)] == ["account.opened"]


class TestRuleDecisions:
    def test_fee_rules_and_waivers_are_recorded(self, bank, fee_rule, supervisor, open_account):
        rule = fee_rule()
        fee_services.fee_rule_update(rule_id=rule.pk, changes={"name": "Renamed"}, actor=supervisor)
        account = open_account()
        waiver = fee_services.fee_waiver_create(
            account_id=account.pk,
            customer_id=None,
            event="",
            reason="staff account",
            valid_from=bank.business_date,
            expires_on=bank.business_date + dt.timedelta(days=30),
            actor=supervisor,
            now=timezone.now(),
        )

        assert [a for a, _, _ in decisions("fee_rule", rule.pk)] == [
            "fee_rule.created",
            "fee_rule.changed",
        ]
        assert AuditLog.objects.get(action="fee_rule.changed", object_id=str(rule.pk)).details == {
            "version": 2,
            "fields": ["name"],
        }
        assert decisions("fee_waiver", waiver.pk) == [
            ("fee_waiver.created", "super1", "supervisor")
        ]

    def test_limit_rules_and_overrides_are_recorded(self, bank, supervisor, open_account):
        now = timezone.now()
        rule = limit_services.limit_rule_create(
            spec=LimitRuleSpec(currency="USD", max_count=10), actor=supervisor, now=now
        )
        limit_services.limit_rule_update(
            rule_id=rule.pk, changes=LimitRuleChanges(max_count=20), actor=supervisor, now=now
        )
        account = open_account()
        override, _ = limit_services.limit_override_set(
            account_id=account.pk,
            max_amount=None,
            max_count=3,
            on_breach="refuse",
            channel="",
            txn_type="",
            name="tight",
            actor=supervisor,
            now=now,
        )

        assert [a for a, _, _ in decisions("limit_rule", rule.pk)] == [
            "limit_rule.created",
            "limit_rule.changed",
        ]
        assert [a for a, _, _ in decisions("limit_rule", override.pk)] == ["limit_override.set"]


class TestHistoryRows:
    def test_a_service_call_in_a_request_stores_the_user_and_a_reason_naming_the_request(
        self, bank, supervisor
    ):
        request = RequestFactory().patch("/api/v1/limit-rules/1")
        request.user = supervisor

        with context.request_context(
            request, request_id="req-hist-1", source_ip="10.0.0.9", channel="api"
        ):
            rule = limit_services.limit_rule_create(
                spec=LimitRuleSpec(currency="USD", max_count=5), actor=None, now=timezone.now()
            )

        version = rule.history.get()
        assert version.history_user == supervisor
        assert version.history_change_reason == (
            "created by PATCH /api/v1/limit-rules/1 [request req-hist-1]"
        )
        row = AuditLog.objects.get(action="limit_rule.created", object_id=str(rule.pk))
        assert (row.actor, row.request_id, row.source_ip) == ("super1", "req-hist-1", "10.0.0.9")

    def test_a_service_reason_is_kept(self, open_account, supervisor):
        account = open_account()

        account_services.account_freeze(
            account_id=account.pk,
            freeze_type="debit",
            reason="court",
            actor=supervisor,
            now=timezone.now(),
        )

        assert account.history.latest().history_change_reason == "frozen (debit): court"

    def test_a_reason_longer_than_the_column_is_cut_instead_of_failing_the_change(
        self, open_account, supervisor
    ):
        account = open_account()
        reason = "r" * 200  # the API allows 200 characters; the history column holds 100

        account_services.account_freeze(
            account_id=account.pk,
            freeze_type="debit",
            reason=reason,
            actor=supervisor,
            now=timezone.now(),
        )

        stored = account.history.latest().history_change_reason
        assert stored == f"frozen (debit): {reason}"[:100]

    def test_outside_any_request_the_reason_says_so(self, bank, fee_rule, supervisor):
        rule = fee_rule()

        assert rule.history.get().history_change_reason == "created by direct call"


class TestBatchContext:
    def test_a_celery_task_runs_as_the_system_job_named_after_it(self):
        task = SimpleNamespace(name="ledger.idempotency_purge")

        task_context_open(task_id="task-1", task=task)
        inside = context.current().actor()
        request_id = context.current().request_id
        task_context_close(task_id="task-1")

        assert (inside.name, inside.role, request_id) == (
            "system:ledger.idempotency_purge",
            "system",
            "task-1",
        )
        assert context.current().channel == "direct"
