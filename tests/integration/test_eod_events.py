"""End of day announces what its bulk statements change, in the statements' own transactions.

Each event is written by the set-based statement that makes the change, so a step that is
killed and resumed, or re-run, announces each change exactly once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Account
from banksim.core.money import Money
from eod.models import EodRun
from eod.services import SimulatedKill, eod_run
from eod.steps import STEP_ORDER, StepContext
from interest.steps import accrue_and_capitalise, periodic_fees
from ledger.models import Entry, Hold, Journal
from ledger.services import hold_place
from outbox.models import OutboxEvent
from tests.factories import CustomerFactory, ProductTermsFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)


def run_eod() -> EodRun:
    return eod_run(calendar_code="MAIN", now=NOW)


def idle_since(bank, day: dt.date) -> Account:
    customer = CustomerFactory(home_branch=bank.branch)
    return account_services.account_open(
        customer_id=customer.pk,
        product_code="SBA-USD",
        branch_id=bank.branch.pk,
        actor=None,
        business_date=day,
        now=timezone.now(),
    )


def hold_due_today(account: Account, amount: str) -> Hold:
    return hold_place(
        account_id=account.pk,
        amount=Money.parse(amount, account.currency),
        reason="card auth",
        expires_on=DAY,
        actor=None,
        business_date=dt.date(2026, 11, 20),
        now=timezone.now(),
    )


def events(event_type: str, account: Account) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(
            type=event_type, aggregate_type="account", aggregate_id=account.account_number
        ).order_by("id")
    )


@pytest.fixture
def world(bank, funded_account) -> dict[str, object]:
    # SBA-USD terms: 730 days dormancy; 2024-11-30 + 730 days = 2026-11-30.
    sleeper = idle_since(bank, dt.date(2024, 11, 30))
    saver = funded_account("100.00")
    expiring = hold_due_today(saver, "30.00")
    return {"sleeper": sleeper, "saver": saver, "expiring": expiring}


class TestHoldsAndDormancyEvents:
    def test_an_account_marked_dormant_is_announced_once_with_its_new_status(self, world):
        sleeper = world["sleeper"]

        run = run_eod()

        assert run.status == EodRun.Status.DONE, run.error
        [dormant] = events("banksim.account.dormant", sleeper)
        assert dormant.source == "/banksim/accounts"
        assert dormant.business_date == DAY and dormant.time >= NOW
        assert dormant.data["account_number"] == sleeper.account_number
        assert dormant.data["account_id"] == sleeper.pk
        assert dormant.data["status"] == "dormant" and dormant.data["actor"] is None
        assert dormant.data["reason"].startswith("dormant: no customer activity")
        previous = OutboxEvent.objects.filter(
            aggregate_type="account", aggregate_id=sleeper.account_number
        ).exclude(pk=dormant.pk)
        assert dormant.sequence == max(e.sequence for e in previous) + 1

    def test_an_expired_hold_is_announced_once_as_released_with_status_expired(self, world):
        saver, expiring = world["saver"], world["expiring"]

        run_eod()

        [released] = events("banksim.hold.released", saver)
        assert released.source == "/banksim/ledger"
        assert released.data == {
            "hold_id": expiring.pk,
            "account_number": saver.account_number,
            "amount": "30.00",
            "currency": "USD",
            "status": "expired",
            "txn_id": None,
            "actor": None,
        }
        placed = events("banksim.hold.placed", saver)[-1]
        assert released.sequence > placed.sequence

    def test_a_run_killed_after_the_step_announces_each_change_once_on_resume(
        self, settings, world
    ):
        settings.EOD_TEST_KILL_POINT = "holds_and_dormancy:end"
        with pytest.raises(SimulatedKill):
            run_eod()
        settings.EOD_TEST_KILL_POINT = None

        resumed = run_eod()

        assert resumed.status == EodRun.Status.DONE, resumed.error
        assert resumed.steps.get(name="holds_and_dormancy").attempts == 2
        assert len(events("banksim.account.dormant", world["sleeper"])) == 1
        assert len(events("banksim.hold.released", world["saver"])) == 1


# --- bulk journals: interest capitalisation and periodic fees --------------------------------


def run_interest_step(on: dt.date = DAY) -> dict[str, object]:
    ctx = StepContext(
        business_date=on, calendar_code="MAIN", now=NOW, progress=lambda done, total: None
    )
    return accrue_and_capitalise(ctx).summary


def run_fees_step(on: dt.date = DAY) -> dict[str, object]:
    ctx = StepContext(
        business_date=on, calendar_code="MAIN", now=NOW, progress=lambda done, total: None
    )
    return periodic_fees(ctx).summary


def posted_events_of(txn_type: str) -> dict[str, OutboxEvent]:
    txn_ids = Journal.objects.filter(txn_type=txn_type, channel="batch").values_list(
        "txn_id", flat=True
    )
    found = OutboxEvent.objects.filter(
        type="banksim.transaction.posted", aggregate_type="transaction", aggregate_id__in=txn_ids
    )
    assert found.count() == len(txn_ids), "one event per bulk journal"
    return {e.aggregate_id: e for e in found}


@pytest.fixture
def savings_rate(bank) -> None:
    """Savings pay 3.65 % ACT/365: 1000.00 earns 0.10 a day."""
    ProductTermsFactory(
        product=bank.products["SBA-USD"],
        effective_from=dt.date(2026, 1, 1),
        credit_interest_rate=Decimal("3.6500"),
        accrual_basis="ACT/365",
    )


@pytest.mark.usefixtures("savings_rate")
class TestBulkJournalEvents:
    def test_each_interest_journal_is_announced_once_with_its_summary(self, bank, funded_account):
        first, second = funded_account("1000.00"), funded_account("1000.00")
        expense = bank.office_account("interest_expense", "USD")

        run_interest_step()

        [journal] = Journal.objects.filter(entries__account=first, entries__purpose="interest")
        assert Entry.objects.filter(journal=journal, account=second).exists()
        event = posted_events_of(journal.txn_type)[journal.txn_id]
        assert (event.sequence, event.business_date, event.source) == (1, DAY, "/banksim/ledger")
        assert event.data == {
            "txn_id": journal.txn_id,
            "journal_id": journal.pk,
            "txn_type": journal.txn_type,
            "channel": "batch",
            "status": "posted",
            "bulk": True,
            "business_date": "2026-11-30",
            "narration": journal.narration,
            "currency": "USD",
            "counter_account": expense.account_number,
            "customer_legs": 2,
            "leg_count": 3,
            "total": "0.20",
            "customer_credit": "0.20",
            "customer_debit": "0.00",
        }

    def test_a_re_run_of_the_interest_step_announces_nothing_more(self, funded_account):
        saver = funded_account("1000.00")
        run_interest_step()
        before = OutboxEvent.objects.filter(type="banksim.transaction.posted").count()

        run_interest_step()

        assert OutboxEvent.objects.filter(type="banksim.transaction.posted").count() == before
        [journal] = Journal.objects.filter(entries__account=saver, entries__purpose="interest")
        assert journal.txn_id in posted_events_of(journal.txn_type)

    def test_each_periodic_fee_journal_is_announced_once(self, fee_rule, funded_account):
        customer = funded_account("100.00")
        fee_rule(event="monthly_maintenance", flat_fee="2.00", tax_rate_percent="10")

        run_fees_step()
        run_fees_step()

        journals = Journal.objects.filter(entries__account=customer, channel="batch").distinct()
        assert journals.count() >= 1
        for journal in journals:
            event = posted_events_of(journal.txn_type)[journal.txn_id]
            assert event.data["customer_debit"] in ("2.00", "0.20")
            assert event.data["total"] == event.data["customer_debit"]


# --- the run's own pulse: eod.step_finished and eod.progress ---------------------------------


def eod_stream() -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(aggregate_type="eod", aggregate_id="MAIN").order_by("sequence")
    )


class TestStepEvents:
    def test_each_step_is_announced_finished_between_the_days_start_and_end(self, world):
        run = run_eod()

        stream = eod_stream()
        assert [e.type for e in stream] == [
            "banksim.eod.started",
            *["banksim.eod.step_finished"] * len(STEP_ORDER),
            "banksim.eod.finished",
        ]
        assert [e.data["step"] for e in stream[1:-1]] == STEP_ORDER
        assert [e.sequence for e in stream] == list(range(1, len(stream) + 1))
        holds = next(e for e in stream[1:-1] if e.data["step"] == "holds_and_dormancy")
        checkpoint = run.steps.get(name="holds_and_dormancy")
        assert holds.data["rows"] == checkpoint.rows_done == 2
        assert holds.data["summary"] == checkpoint.summary
        assert holds.data["seconds"] == checkpoint.summary["seconds"]
        assert holds.data["summary"]["holds_expired"] == 1

    def test_a_step_killed_before_its_checkpoint_is_announced_once_after_resume(
        self, settings, world
    ):
        settings.EOD_TEST_KILL_POINT = "holds_and_dormancy:end"
        with pytest.raises(SimulatedKill):
            run_eod()
        settings.EOD_TEST_KILL_POINT = None

        run_eod()

        finished = [e.data["step"] for e in eod_stream() if e.type == "banksim.eod.step_finished"]
        assert finished == STEP_ORDER

    def test_progress_is_announced_at_most_once_per_interval(self, settings, world):
        settings.EOD_PROGRESS_EVENT_SECONDS = 0

        run_eod()

        progress = [e for e in eod_stream() if e.type == "banksim.eod.progress"]
        holds = [e.data for e in progress if e.data["step"] == "holds_and_dormancy"]
        assert [(p["rows_done"], p["rows_total"]) for p in holds] == [(1, 2), (2, 2)]

    def test_a_step_shorter_than_the_interval_reports_no_progress_event(self, world):
        run_eod()

        assert not [e for e in eod_stream() if e.type == "banksim.eod.progress"]
