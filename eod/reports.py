"""The reports of a closed business date, written by ``close_day`` as CSV text.

Kinds: ``trial_balance``, ``gl_movement``, ``interest``, ``fees``,
``failed_standing_instructions``, ``dormant_accounts``. Each is one set-based read.

Apps that own a report's data may provide ``<app>.reports.eod_report(*, business_date) ->
(header, rows)``; ``interest`` and ``instructions`` are asked first, and without such a hook
the report is built from what the ledger (interest postings) or the instructions app's run
table shows, with a note row saying what is missing.
"""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from django.apps import apps
from django.db import connection, transaction

from accounts.models import Account
from banksim.core.money import Money
from eod.models import EodReport, EodRun
from ledger.selectors import trial_balance

Table = tuple[list[str], list[Sequence[Any]]]

REPORT_KINDS = (
    "trial_balance",
    "gl_movement",
    "interest",
    "fees",
    "failed_standing_instructions",
    "dormant_accounts",
)

# The reason ``accounts_mark_dormant`` writes on the history rows it adds.
DORMANT_REASON = "dormant: no customer activity (EOD {day})"


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _wire(minor: int, currency: str) -> str:
    return Money.from_minor(int(minor), currency).to_wire()


def _hook(app: str) -> Callable[..., Table] | None:
    if not apps.is_installed(app):
        return None
    try:
        module = importlib.import_module(f"{app}.reports")
    except ModuleNotFoundError as exc:
        if exc.name == f"{app}.reports":
            return None
        raise
    hook: Callable[..., Table] | None = getattr(module, "eod_report", None)
    return hook


def trial_balance_report(*, business_date: date) -> Table:
    """Balances per currency and GL sub-head at the close (the balance rows, not entries)."""
    rows: list[Sequence[Any]] = []
    for tb in trial_balance():
        for line in tb.lines:
            rows.append(
                [
                    tb.currency,
                    line.gl_subhead,
                    line.name,
                    line.category,
                    line.debit.to_wire(),
                    line.credit.to_wire(),
                    line.net.to_wire(),
                ]
            )
        rows.append(
            [
                tb.currency,
                "TOTAL",
                "",
                "",
                tb.debit.to_wire(),
                tb.credit.to_wire(),
                tb.net.to_wire(),
            ]
        )
    return ["currency", "gl_subhead", "name", "category", "debit", "credit", "net"], rows


def gl_movement_report(*, business_date: date) -> Table:
    """Debits and credits of the day's entries per currency and GL sub-head."""
    raw = _rows(
        """SELECT e.currency, g.code, g.name,
                  COALESCE(SUM(e.amount_minor) FILTER (WHERE e.side = 'D'), 0),
                  COALESCE(SUM(e.amount_minor) FILTER (WHERE e.side = 'C'), 0),
                  count(*)
             FROM ledger_entry e
             JOIN accounts_account a ON a.id = e.account_id
             JOIN accounts_product p ON p.id = a.product_id
             JOIN accounts_glsubhead g ON g.id = COALESCE(a.gl_subhead_id, p.gl_subhead_id)
            WHERE e.business_date = %s
            GROUP BY e.currency, g.code, g.name
            ORDER BY e.currency, g.code""",
        [business_date],
    )
    rows = [[cur, code, name, _wire(d, cur), _wire(c, cur), n] for cur, code, name, d, c, n in raw]
    return ["currency", "gl_subhead", "name", "debits", "credits", "entries"], rows


def interest_report(*, business_date: date) -> Table:
    """Interest accrued and posted; the interest app's hook if it has one, else postings."""
    hook = _hook("interest")
    if hook is not None:
        return hook(business_date=business_date)
    raw = _rows(
        """SELECT j.txn_id, a.account_number, e.side, e.amount_minor, e.currency, e.purpose
             FROM ledger_journal j
             JOIN ledger_entry e ON e.journal_id = j.id
             JOIN accounts_account a ON a.id = e.account_id
            WHERE j.business_date = %s AND j.txn_type = 'interest' AND a.kind = 'customer'
            ORDER BY j.id, e.id""",
        [business_date],
    )
    rows: list[Sequence[Any]] = [
        [txn, acct, side, _wire(amount, cur), cur, purpose]
        for txn, acct, side, amount, cur, purpose in raw
    ]
    rows.append(["note", "accrued amounts: the interest app provides no eod_report hook", "", ""])
    return ["txn_id", "account_number", "side", "amount", "currency", "purpose"], rows


def fees_report(*, business_date: date) -> Table:
    """Every fee charged by the day's posted journals (``details.fees``)."""
    raw = _rows(
        """SELECT j.txn_id, j.txn_type, j.channel, f
             FROM ledger_journal j, jsonb_array_elements(j.details -> 'fees') f
            WHERE j.business_date = %s AND j.status = 'posted'
              AND jsonb_typeof(j.details -> 'fees') = 'array'
            ORDER BY j.id""",
        [business_date],
    )
    rows: list[Sequence[Any]] = []
    for txn, txn_type, channel, fee in raw:
        fee = fee if isinstance(fee, dict) else {}
        rows.append(
            [
                txn,
                txn_type,
                channel,
                fee.get("event", ""),
                fee.get("rule_id", ""),
                fee.get("currency", ""),
                fee.get("fee", ""),
                fee.get("tax", ""),
                fee.get("waived_by") or "",
            ]
        )
    return ["txn_id", "txn_type", "channel", "event", "rule_id", "currency", "fee", "tax",
            "waived_by"], rows  # fmt: skip


def failed_standing_instructions_report(*, business_date: date) -> Table:
    """Standing-instruction attempts of the day that failed or will be retried."""
    hook = _hook("instructions")
    if hook is not None:
        return hook(business_date=business_date)
    header = ["instruction_id", "due_date", "attempt", "outcome", "error_code"]
    if not apps.is_installed("instructions"):
        return header, [["note", "the instructions app is not installed", "", "", ""]]
    raw = _rows(
        """SELECT instruction_id, due_date, attempt, outcome, error_code
             FROM instructions_standinginstructionrun
            WHERE run_on = %s AND outcome IN ('failed', 'retry')
            ORDER BY instruction_id, attempt""",
        [business_date],
    )
    return header, [list(row) for row in raw]


def dormant_accounts_report(*, business_date: date) -> Table:
    """Accounts the day's EOD marked dormant."""
    history = Account.history.model  # type: ignore[attr-defined]
    raw = (
        history.objects.filter(
            history_change_reason=DORMANT_REASON.format(day=business_date.isoformat())[:100],
            status=Account.Status.DORMANT,
        )
        .order_by("id")
        .values_list("account_number", "customer__cif_id", "product__code", "currency")
    )
    return ["account_number", "cif_id", "product", "currency"], [list(row) for row in raw]


BUILDERS: dict[str, Callable[..., Table]] = {
    "trial_balance": trial_balance_report,
    "gl_movement": gl_movement_report,
    "interest": interest_report,
    "fees": fees_report,
    "failed_standing_instructions": failed_standing_instructions_report,
    "dormant_accounts": dormant_accounts_report,
}


def as_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header, rows = table
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def reports_write(*, run: EodRun, now: datetime) -> list[str]:
    """Build and store every report of ``run``'s business date; return the kinds written.

    Requires the caller's transaction (``close_day``'s). Writing again replaces the content.
    """
    assert connection.in_atomic_block, "reports_write requires the caller's transaction"
    with transaction.atomic():
        for kind in REPORT_KINDS:
            content = as_csv(BUILDERS[kind](business_date=run.business_date))
            EodReport.objects.update_or_create(
                run=run, kind=kind, defaults={"content": content, "created_at": now}
            )
    return list(REPORT_KINDS)
