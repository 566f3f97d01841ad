"""End of day: the orchestrator, its checkpoints and resume, and the steps of the eod app.

EOD commits step by step (that is what makes it resumable). Inside a test's transaction each
of those commits is a savepoint (Django relaxes ``durable=True`` there), which keeps these
tests fast; a kill rolls back the step's open savepoint just as a real kill rolls back its
open transaction.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Account, Calendar, Holiday
from banksim.core.money import Money
from eod.models import EodReport, EodRun, EodStep
from eod.services import SimulatedKill, eod_run
from eod.steps import STEP_ORDER
from ledger.errors import DayNotOpen
from ledger.models import AccountBalance, ApprovalThreshold, Hold, Journal
from ledger.selectors import ledger_violations
from ledger.services import (
    Movement,
    hold_place,
    journal_approve,
    journal_reverse,
    movement_execute,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 30)  # a Monday
NOW = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)


def run_eod(**kwargs: object) -> EodRun:
    return eod_run(calendar_code="MAIN", now=NOW, **kwargs)  # type: ignore[arg-type]


def calendar() -> Calendar:
    return Calendar.objects.get(code="MAIN")


def steps(run: EodRun) -> dict[str, str]:
    return dict(run.steps.order_by("position").values_list("name", "status"))


def open_on(bank, day: dt.date, product_code: str = "SBA-USD") -> Account:
    customer = CustomerFactory(home_branch=bank.branch)
    return account_services.account_open(
        customer_id=customer.pk,
        product_code=product_code,
        branch_id=bank.branch.pk,
        actor=None,
        business_date=day,
        now=timezone.now(),
    )


def move(debit: Account, credit: Account, amount: str, *, channel: str, day: dt.date = DAY):
    txn_type = "cash_deposit" if debit.kind == "office" else "transfer"
    return movement_execute(
        movement=Movement(
            txn_type=txn_type,
            debit_account_id=debit.pk,
            credit_account_id=credit.pk,
            amount=Money.parse(amount, debit.currency),
            channel=channel,
        ),
        actor=None,
        business_date=day,
        now=timezone.now(),
    )


def reverse(journal: Journal, *, channel: str) -> Journal:
    return journal_reverse(
        journal_id=journal.pk,
        reason="test",
        actor=None,
        channel=channel,
        business_date=DAY,
        now=NOW,
    )


def balance(account: Account) -> AccountBalance:
    return AccountBalance.objects.get(account=account)


class TestClosingTheDay:
    def test_a_sound_day_runs_every_step_writes_reports_and_opens_the_next_day(
        self, bank, funded_account
    ):
        funded_account("100.00")

        run = run_eod()

        assert run.status == EodRun.Status.DONE, run.error
        assert set(steps(run).values()) == {"done"}
        assert list(steps(run)) == STEP_ORDER
        assert (calendar().business_date, calendar().day_state) == (dt.date(2026, 12, 1), "open")
        kinds = set(EodReport.objects.filter(run=run).values_list("kind", flat=True))
        assert {"trial_balance", "gl_movement", "fees", "dormant_accounts"} <= kinds
        gl = EodReport.objects.get(run=run, kind="gl_movement").content
        assert "20100,Savings deposits,0.00,100.00,1" in gl

    def test_friday_closes_into_the_next_monday_and_a_holiday_is_skipped(self, bank):
        Calendar.objects.filter(code="MAIN").update(business_date=dt.date(2026, 12, 4))
        Holiday.objects.create(calendar=calendar(), date=dt.date(2026, 12, 7), name="Bank day")

        run = run_eod()

        assert run.business_date == dt.date(2026, 12, 4)
        assert calendar().business_date == dt.date(2026, 12, 8)  # Sat, Sun, holiday Mon skipped

    def test_the_calendar_own_weekend_days_are_honoured(self, bank):
        Calendar.objects.filter(code="MAIN").update(
            business_date=dt.date(2026, 12, 3), weekend_days="5,6"
        )

        run_eod()

        assert calendar().business_date == dt.date(2026, 12, 6)  # Thu -> Sun (Fri, Sat off)

    def test_running_again_closes_the_next_day_not_the_same_one_twice(self, bank):
        first = run_eod()

        second = run_eod()

        assert (first.business_date, second.business_date) == (DAY, dt.date(2026, 12, 1))
        assert calendar().business_date == dt.date(2026, 12, 2)


class TestEvents:
    def test_a_resumed_day_announces_its_start_and_its_end_once_each(self, bank, funded_account):
        from outbox.models import OutboxEvent

        saver = funded_account("100.00")
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET ledger_minor = ledger_minor + 1 WHERE account_id = %s",
                [saver.pk],
            )
        run_eod()  # blocked at the gate
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET ledger_minor = ledger_minor - 1 WHERE account_id = %s",
                [saver.pk],
            )

        run_eod()

        events = OutboxEvent.objects.filter(
            aggregate_type="eod",
            aggregate_id="MAIN",
            type__in=("banksim.eod.started", "banksim.eod.finished"),
        )
        assert sorted(events.values_list("type", flat=True)) == [
            "banksim.eod.finished",
            "banksim.eod.started",
        ]
        finished = events.get(type="banksim.eod.finished")
        assert finished.data["next_business_date"] == "2026-12-01"
        assert finished.business_date == DAY


class TestHoldsAndDormancy:
    def test_holds_due_by_the_day_expire_and_release_their_funds_once(self, bank, funded_account):
        saver = funded_account("100.00")
        due = hold_place(
            account_id=saver.pk,
            amount=Money.parse("30.00", "USD"),
            reason="card auth",
            expires_on=DAY,
            actor=None,
            business_date=dt.date(2026, 11, 20),
            now=timezone.now(),
        )
        later = hold_place(
            account_id=saver.pk,
            amount=Money.parse("5.00", "USD"),
            reason="card auth",
            expires_on=dt.date(2026, 12, 2),
            actor=None,
            business_date=DAY,
            now=timezone.now(),
        )

        run = run_eod()

        due.refresh_from_db()
        later.refresh_from_db()
        assert (due.status, later.status) == (Hold.Status.EXPIRED, Hold.Status.ACTIVE)
        assert balance(saver).held_minor == 500
        assert due.history.filter(status="expired").count() == 1
        assert run.steps.get(name="holds_and_dormancy").summary["holds_expired"] == 1
        assert ledger_violations() == []

    def test_an_account_idle_for_exactly_its_dormancy_period_goes_dormant(self, bank):
        # SBA-USD terms: 730 days; 2024-11-30 + 730 days = 2026-11-30.
        idle = open_on(bank, dt.date(2024, 11, 30))
        one_day_short = open_on(bank, dt.date(2024, 12, 1))

        run = run_eod()

        idle.refresh_from_db()
        one_day_short.refresh_from_db()
        assert (idle.status, one_day_short.status) == ("dormant", "active")
        assert idle.history.filter(status="dormant").count() == 1
        report = EodReport.objects.get(run=run, kind="dormant_accounts").content
        assert idle.account_number in report
        assert one_day_short.account_number not in report

    def test_office_accounts_never_go_dormant(self, bank):
        Calendar.objects.filter(code="MAIN").update(business_date=dt.date(2030, 1, 2))

        run_eod()

        assert not Account.objects.filter(kind="office", status="dormant").exists()


class TestBlockingTheDay:
    def test_the_integrity_gate_blocks_a_corrupted_ledger_and_the_day_stays_unclosed(
        self, bank, funded_account
    ):
        saver = funded_account("100.00")
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET ledger_minor = ledger_minor + 1 WHERE account_id = %s",
                [saver.pk],
            )

        run = run_eod()

        assert run.status == EodRun.Status.BLOCKED
        gate = run.steps.get(name="integrity_gate")
        assert gate.status == EodStep.Status.FAILED
        assert "balance_equals_entries" in gate.error
        assert "trial balance USD nets" in gate.error
        assert steps(run)["close_day"] == "pending"
        assert (calendar().business_date, calendar().day_state) == (DAY, "eod_running")

    def test_a_blocked_day_resumes_at_the_gate_once_the_ledger_is_repaired(
        self, bank, funded_account
    ):
        saver = funded_account("100.00")
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET ledger_minor = ledger_minor + 1 WHERE account_id = %s",
                [saver.pk],
            )
        run_eod()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_balance SET ledger_minor = ledger_minor - 1 WHERE account_id = %s",
                [saver.pk],
            )

        run = run_eod()

        assert run.status == EodRun.Status.DONE
        assert run.steps.get(name="integrity_gate").attempts == 2
        assert run.steps.get(name="preconditions").attempts == 1
        assert calendar().business_date == dt.date(2026, 12, 1)

    def test_an_unapproved_item_from_an_earlier_day_blocks_and_is_named(
        self, bank, funded_account, open_account
    ):
        payer = funded_account("100.00")
        payee = open_account("CAA-USD")
        ApprovalThreshold.objects.create(currency="USD", amount_minor=1_000)
        stale = move(payer, payee, "20.00", channel="teller", day=dt.date(2026, 11, 27)).journal
        todays = move(payer, payee, "20.00", channel="teller").journal

        run = run_eod()

        assert run.status == EodRun.Status.BLOCKED
        error = run.steps.get(name="preconditions").error
        assert stale.txn_id in error
        assert todays.txn_id not in error
        assert calendar().day_state == "eod_running"


def other_session():
    """A second database session, as a teller request on another worker would have."""
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"], host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"],
        password=db["PASSWORD"] or None,
    )  # fmt: skip


class TestInFlightPostings:
    def test_preconditions_wait_for_a_transaction_older_than_eod_to_end(self, bank, settings):
        settings.EOD_INFLIGHT_WAIT_SECONDS = 10
        session = other_session()
        session.execute("SELECT 1")  # a transaction is open (psycopg does not autocommit)
        timer = threading.Timer(0.3, session.commit)
        timer.start()

        run = run_eod()

        timer.join()
        session.close()
        preconditions = run.steps.get(name="preconditions")
        assert preconditions.summary["lingering_transactions"] == []
        assert preconditions.summary["seconds"] >= 0.25

    def test_a_transaction_still_open_after_the_wait_is_named_and_eod_goes_on(self, bank, settings):
        settings.EOD_INFLIGHT_WAIT_SECONDS = 0.2
        session = other_session()
        session.execute("SELECT 1")
        pid = session.info.backend_pid

        run = run_eod()

        session.close()
        assert run.status == EodRun.Status.DONE
        assert run.steps.get(name="preconditions").summary["lingering_transactions"] == [pid]


class TestTellerPostingsDuringEod:
    def test_teller_postings_are_refused_while_eod_runs_and_batch_postings_are_not(
        self, bank, funded_account, open_account
    ):
        saver = funded_account("100.00")
        payee = open_account("CAA-USD")
        run_eod(stop_after="preconditions")

        with pytest.raises(DayNotOpen) as refused:
            move(saver, payee, "1.00", channel="teller")
        batch = move(saver, payee, "2.00", channel="batch")

        assert refused.value.code == "eod.day_not_open"
        assert refused.value.status == 409
        assert batch.posted
        assert balance(payee).ledger_minor == 200

    def test_approvals_and_teller_reversals_wait_too_but_batch_reversals_do_not(
        self, bank, funded_account, open_account, supervisor
    ):
        payer = funded_account("100.00")
        payee = open_account("CAA-USD")
        posted = move(payer, payee, "1.00", channel="teller").journal
        ApprovalThreshold.objects.create(currency="USD", amount_minor=1_000)
        entered = move(payer, payee, "20.00", channel="teller").journal
        run_eod(stop_after="preconditions")

        with pytest.raises(DayNotOpen):
            journal_approve(journal_id=entered.pk, actor=supervisor, business_date=DAY, now=NOW)
        with pytest.raises(DayNotOpen):
            reverse(posted, channel="teller")
        reversal = reverse(posted, channel="batch")

        assert reversal.reversal_of_id == posted.pk
        entered.refresh_from_db()
        assert entered.status == Journal.Status.ENTERED

    def test_postings_are_accepted_again_once_the_next_day_opens(
        self, bank, funded_account, open_account
    ):
        saver = funded_account("100.00")
        payee = open_account("CAA-USD")
        run_eod()

        result = move(saver, payee, "1.00", channel="teller", day=dt.date(2026, 12, 1))

        assert result.posted


# --- resume: a stop or a kill at every step posts every effect exactly once --------------------


def build_world(bank, funded_account, open_account) -> dict[str, Account]:
    """Accounts that every step has something to do for; named by role."""
    saver = funded_account("1000.00")
    current = open_account("CAA-USD")
    move(current, saver, "50.00", channel="batch")  # an overdrawn current account
    idle = open_on(bank, dt.date(2024, 11, 1))
    hold_place(
        account_id=saver.pk,
        amount=Money.parse("30.00", "USD"),
        reason="card auth",
        expires_on=DAY,
        actor=None,
        business_date=dt.date(2026, 11, 20),
        now=timezone.now(),
    )
    world = {"saver": saver, "current": current, "idle": idle}
    if apps.is_installed("instructions"):
        from instructions.services import si_create

        empty = open_account("SBA-USD")
        world["empty"] = empty
        for payer, amount in ((saver, "10.00"), (empty, "5.00")):  # one posts, one fails
            si_create(
                debit_account_id=payer.pk,
                credit_account_id=current.pk,
                amount=Money.parse(amount, "USD"),
                frequency="monthly",
                next_date=DAY,
                end_date=None,
                max_retries=0,
                carry_forward=False,
                narration="rent",
                actor=None,
                business_date=DAY,
                now=timezone.now(),
            )
    for role in ("teller_cash", "interest_expense", "interest_income", "fee_income"):
        world[role] = bank.office_account(role)
    return world


def fingerprint(world: dict[str, Account]) -> dict[str, object]:
    """Everything the day's EOD changes, by role, independent of ids."""
    accounts = {
        role: (
            balance(account).ledger_minor,
            balance(account).held_minor,
            Account.objects.get(pk=account.pk).status,
            account.history.filter(history_type="~").count(),
        )
        for role, account in world.items()
    }
    journals = sorted(
        Journal.objects.filter(business_date=DAY, channel="batch").values_list("txn_type", "status")
    )
    cal = calendar()
    return {
        "accounts": accounts,
        "batch_journals": journals,
        "holds": sorted(Hold.objects.values_list("status", "amount_minor")),
        "calendar": (cal.business_date, cal.day_state),
        "reports": sorted(
            (kind, len(content.splitlines()))
            for kind, content in EodReport.objects.filter(run__business_date=DAY).values_list(
                "kind", "content"
            )
        ),
        "violations": ledger_violations(),
    }


KILL_POINTS = [f"{step}:{where}" for step in STEP_ORDER for where in ("progress", "end")]


def reference_print(bank, funded_account, open_account) -> dict[str, object]:
    """The fingerprint of one uninterrupted run over a fresh copy of the world.

    Built and run inside a savepoint that is then rolled back, so the test starts again from
    the bare bank (fingerprints name accounts by role, so the new ids do not matter).
    """
    if "print" in _REFERENCE:  # the world is the same in every test: build it once
        return _REFERENCE["print"]
    sid = transaction.savepoint()
    try:
        world = build_world(bank, funded_account, open_account)
        run = run_eod()
        assert run.status == EodRun.Status.DONE, run.error
        _REFERENCE["print"] = fingerprint(world)
        return _REFERENCE["print"]
    finally:
        transaction.savepoint_rollback(sid)


_REFERENCE: dict[str, dict[str, object]] = {}


class TestResume:
    @pytest.mark.parametrize("step", STEP_ORDER)
    def test_a_run_stopped_after_any_step_resumes_and_posts_each_effect_once(
        self, step, bank, funded_account, open_account
    ):
        expected = reference_print(bank, funded_account, open_account)
        world = build_world(bank, funded_account, open_account)
        stopped = run_eod(stop_after=step)
        assert stopped.status == EodRun.Status.RUNNING
        assert steps(stopped)[step] == "done"

        resumed = run_eod()  # after close_day: finds DAY's unfinished run and completes it

        assert resumed.status == EodRun.Status.DONE, resumed.error
        assert resumed.business_date == DAY
        actual = fingerprint(world)
        assert actual["violations"] == []
        assert actual["calendar"] == (dt.date(2026, 12, 1), "open")
        assert actual["accounts"]["idle"][2:] == ("dormant", 1)
        assert actual["holds"] == [("expired", 3000)]
        if apps.is_installed("instructions"):
            assert ("transfer", "posted") in actual["batch_journals"]
            assert ("failed_standing_instructions", 2) in actual["reports"]
        assert actual == expected

    @pytest.mark.parametrize("point", KILL_POINTS)
    def test_a_run_killed_inside_or_at_the_end_of_any_step_completes_exactly_once(
        self, point, settings, bank, funded_account, open_account
    ):
        expected = reference_print(bank, funded_account, open_account)
        world = build_world(bank, funded_account, open_account)
        settings.EOD_TEST_KILL_POINT = point
        try:
            finished = run_eod()
        except SimulatedKill:
            finished = None
        settings.EOD_TEST_KILL_POINT = None
        killed_step = point.partition(":")[0]

        # A step that reports no progress cannot be killed "after its first batch": then the
        # first run simply finished.
        resumed = run_eod() if finished is None else finished

        assert resumed.business_date == DAY
        assert resumed.status == EodRun.Status.DONE, resumed.error
        if finished is None:
            assert resumed.steps.get(name=killed_step).attempts == 2
        assert fingerprint(world) == expected
