"""The end-of-day steps this app owns: preconditions, holds and dormancy, the integrity gate
and closing the day. Each is idempotent per business date (see ``eod.steps``)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection, transaction

from accounts.services import accounts_mark_dormant, calendar_close_and_advance
from eod.models import EodRun
from eod.reports import reports_write
from eod.services import EodBlocked
from eod.steps import StepContext, StepOutcome
from ledger.models import Journal
from ledger.selectors import ledger_violations, trial_balance
from ledger.services import holds_expire, office_balances_fold

# How many offending items a blocked step names; the count is always complete.
_LISTED = 50


def _await_older_transactions(timeout_s: float) -> list[int]:
    """Wait until every transaction of this database that began before now has ended.

    A teller posting checks the day state in its first query; one that checked just before
    EOD set ``eod_running`` may still commit. Waiting for every transaction older than this
    moment (the state change committed before it) closes that window, so the steps that follow
    see every posting of the day. Returns the backends still in such a transaction when
    ``timeout_s`` ran out (an idle-in-transaction session, say), for the step's summary.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        since = cursor.fetchone()[0]
        deadline = time.monotonic() + timeout_s
        while True:
            # Inside a transaction PostgreSQL keeps serving its first read of the activity
            # view; drop that cache so each poll sees sessions as they are now.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                """SELECT pid FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND backend_type = 'client backend' AND xact_start < %s
                    ORDER BY pid""",
                [since],
            )
            pids = [row[0] for row in cursor.fetchall()]
            if not pids or time.monotonic() >= deadline:
                return pids
            time.sleep(0.05)


def preconditions(ctx: StepContext) -> StepOutcome:
    """Block the day while a maker-checker item entered on an earlier day awaits a decision.

    First waits (up to ``EOD_INFLIGHT_WAIT_SECONDS``, default 30) for transactions that began
    before the day entered ``eod_running``. Items entered today may wait for tomorrow's
    checker; older ones mean a queue nobody works, and closing over them would carry
    unapproved holds forever. Also reports the outbox backlog (informational: events are
    delivered after commit, whenever the broker is back).

    :raises EodBlocked: listing the stale items' txn_ids
    """
    lingering = _await_older_transactions(getattr(settings, "EOD_INFLIGHT_WAIT_SECONDS", 30.0))
    stale = list(
        Journal.objects.filter(status=Journal.Status.ENTERED, business_date__lt=ctx.business_date)
        .order_by("business_date", "id")
        .values_list("txn_id", flat=True)
    )
    ctx.progress(1, 1)
    if stale:
        raise EodBlocked(
            f"{len(stale)} maker-checker item(s) from before {ctx.business_date} await approval: "
            + ", ".join(stale[:_LISTED]),
            extra={"violations": stale[:_LISTED], "count": len(stale)},
        )
    summary: dict[str, object] = {"stale_entered": 0, "lingering_transactions": lingering}
    try:
        from outbox.selectors import outbox_backlog
    except ImportError:
        summary["outbox"] = "not installed"
    else:
        backlog = outbox_backlog()
        summary["outbox_pending"] = backlog.pending
        summary["outbox_dead"] = backlog.dead
    return StepOutcome(rows=0, summary=summary)


def holds_and_dormancy(ctx: StepContext) -> StepOutcome:
    """Expire holds due by the business date, then mark idle customer accounts dormant.

    Two transactions, one per part, each set-based; both parts find nothing left to do when
    re-run, so a kill between them or inside either leaves each effect exactly once.
    """
    with transaction.atomic(durable=True):
        expired = holds_expire(business_date=ctx.business_date, now=ctx.now)
    ctx.progress(1, 2)
    with transaction.atomic(durable=True):
        dormant = accounts_mark_dormant(business_date=ctx.business_date, now=ctx.now)
    ctx.progress(2, 2)
    return StepOutcome(
        rows=expired + len(dormant),
        summary={"holds_expired": expired, "accounts_marked_dormant": len(dormant)},
    )


def integrity_gate(ctx: StepContext) -> StepOutcome:
    """Refuse to close a day whose books do not prove out.

    Checks every ledger invariant (each balance equals its entries, journals balance, holds
    add up...), the audit hash chain, and that the trial balance nets to zero per currency.

    :raises EodBlocked: naming every violation found
    """
    # Readers add unfolded office deltas anyway; folding here closes the day on rows that
    # hold the whole day's GL movement.
    folded = office_balances_fold()
    problems = [f"ledger {v.check}: {v.detail}" for v in ledger_violations()]
    ctx.progress(1, 3)
    try:
        from audit.services import audit_chain_violations
    except ImportError:
        audit_checked = False
    else:
        problems += [f"audit chain: {v}" for v in audit_chain_violations()]
        audit_checked = True
    ctx.progress(2, 3)
    balances = trial_balance()
    problems += [
        f"trial balance {tb.currency} nets {tb.net.to_wire()}, not zero"
        for tb in balances
        if not tb.net.is_zero()
    ]
    ctx.progress(3, 3)
    if problems:
        raise EodBlocked(
            f"{len(problems)} integrity violation(s); the day stays open for EOD until fixed",
            extra={"violations": problems[:_LISTED], "count": len(problems)},
        )
    return StepOutcome(
        rows=0,
        summary={
            "office_deltas_folded": folded,
            "ledger_violations": 0,
            "audit_chain": "intact" if audit_checked else "not installed",
            "currencies": [tb.currency for tb in balances],
        },
    )


def close_day(ctx: StepContext) -> StepOutcome:
    """Write the day's reports, close it and open the next business day, in one commit.

    Idempotent: once the calendar has moved past the day nothing is written again.
    """
    with transaction.atomic(durable=True):
        run = EodRun.objects.select_related("calendar").get(
            calendar__code=ctx.calendar_code, business_date=ctx.business_date
        )
        if run.calendar.business_date > ctx.business_date:
            return StepOutcome(rows=0, summary={"already_closed": True})
        kinds = reports_write(run=run, now=ctx.now)
        next_date = calendar_close_and_advance(
            code=ctx.calendar_code, business_date=ctx.business_date, now=ctx.now
        )
    ctx.progress(1, 1)
    return StepOutcome(
        rows=len(kinds), summary={"reports": kinds, "next_business_date": next_date.isoformat()}
    )
