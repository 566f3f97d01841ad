"""Reads of balances, journals and statements."""

from __future__ import annotations

from dataclasses import dataclass

from banksim.core.errors import NotFound
from banksim.core.money import Money
from ledger.models import AccountBalance


class BalanceNotFound(NotFound):
    code = "account.not_found"
    title = "Account not found"


@dataclass(frozen=True)
class BalanceSnapshot:
    account_id: int
    ledger: Money
    held: Money
    available: Money  # ledger - held + overdraft headroom
    min_balance: Money
    overdraft_limit: Money


def balance_snapshot(*, account_id: int) -> BalanceSnapshot:
    """Return an account's balances as of the last committed posting.

    :raises BalanceNotFound: if the account has no balance row
    """
    row = AccountBalance.objects.filter(account_id=account_id).first()
    if row is None:
        raise BalanceNotFound(f"no account with id {account_id}")
    cur = row.currency
    return BalanceSnapshot(
        account_id=account_id,
        ledger=Money.from_minor(row.ledger_minor, cur),
        held=Money.from_minor(row.held_minor, cur),
        available=Money.from_minor(
            row.ledger_minor - row.held_minor + row.overdraft_limit_minor, cur
        ),
        min_balance=Money.from_minor(row.min_balance_minor, cur),
        overdraft_limit=Money.from_minor(row.overdraft_limit_minor, cur),
    )


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str


# Each invariant is one set-based query returning offending rows (none when the ledger is sound).
_INVARIANTS: list[tuple[str, str, str]] = [
    (
        "currency_zero_sum",
        "all posted entries of a currency must net to zero",
        """SELECT currency, SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END)
             FROM ledger_entry GROUP BY currency
           HAVING SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END) <> 0""",
    ),
    (
        "journal_balanced",
        "every journal must net to zero per currency",
        """SELECT journal_id, currency,
                  SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END)
             FROM ledger_entry GROUP BY journal_id, currency
           HAVING SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END) <> 0
            LIMIT 20""",
    ),
    (
        "balance_equals_entries",
        "every account's ledger balance must equal the sum of its entries",
        """SELECT b.account_id, b.ledger_minor, COALESCE(e.net, 0)
             FROM ledger_balance b
             LEFT JOIN (SELECT account_id,
                               SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END)
                               AS net
                          FROM ledger_entry GROUP BY account_id) e
               ON e.account_id = b.account_id
            WHERE b.ledger_minor <> COALESCE(e.net, 0)
            LIMIT 20""",
    ),
    (
        "held_equals_active_holds",
        "every account's held amount must equal the sum of its active holds",
        """SELECT b.account_id, b.held_minor, COALESCE(h.total, 0)
             FROM ledger_balance b
             LEFT JOIN (SELECT account_id, SUM(amount_minor) AS total FROM ledger_hold
                         WHERE status = 'active' GROUP BY account_id) h
               ON h.account_id = b.account_id
            WHERE b.held_minor <> COALESCE(h.total, 0)
            LIMIT 20""",
    ),
    (
        "entry_has_posted_journal",
        "every entry must belong to a posted journal",
        """SELECT e.id, j.status FROM ledger_entry e
             LEFT JOIN ledger_journal j ON j.id = e.journal_id
            WHERE j.id IS NULL OR j.status <> 'posted'
            LIMIT 20""",
    ),
    (
        "entry_currency_matches_account",
        "every entry must be in its account's currency",
        """SELECT e.id, e.currency, b.currency FROM ledger_entry e
             JOIN ledger_balance b ON b.account_id = e.account_id
            WHERE e.currency <> b.currency
            LIMIT 20""",
    ),
    (
        "posted_journal_has_entries",
        "every posted journal must have at least two entries",
        """SELECT j.id, j.txn_id FROM ledger_journal j
            WHERE j.status = 'posted'
              AND (SELECT count(*) FROM ledger_entry e WHERE e.journal_id = j.id) < 2
            LIMIT 20""",
    ),
]


def ledger_violations() -> list[Violation]:
    """Check every ledger invariant with set-based SQL; return what broke (empty if sound).

    Runs in one REPEATABLE READ snapshot so concurrent postings cannot produce false alarms.
    """
    from django.db import connection, transaction

    violations: list[Violation] = []
    # Inside a caller's transaction (EOD's gate, tests) its snapshot rules instead.
    own_snapshot = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if own_snapshot:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for name, meaning, sql in _INVARIANTS:
                cursor.execute(sql)
                for row in cursor.fetchall():
                    violations.append(Violation(check=name, detail=f"{meaning}: {row}"))
    return violations
