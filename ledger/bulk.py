"""Set-based posting: many accounts against their office counter accounts in one statement.

Design overview: EOD books the same kind of movement (interest, periodic fees, funding) for up
to a million accounts. ``journal_post`` is one round trip per journal, which at that scale is
minutes of round trips; ``bulk_post`` takes a SQL *source* of legs instead and, in one
statement, groups the legs per counter account into journals of at most ``journal_size``
customer legs plus one aggregated counter leg, locks every balance row it touches in
ascending account id (the lock order of ``ledger_post``, so the two cannot deadlock), inserts
the journals and their entries with the running ``balance_after_minor`` (none on office
accounts, whose rows may also have deltas waiting for ``ledger_office_fold``), and moves the
balances with one ``UPDATE ... FROM``. The balanced-journal trigger checks every journal
the statement wrote, once, at the end of the statement.

Why journals of a few dozen legs: a statement or a page of one stays readable, and the
per-journal costs (journal row, event, sequence values) stay small next to the entries.

The source is any SELECT (or data-modifying statement with RETURNING, which makes "take the
amount from the accrual row" and "post it" one atomic statement) producing columns
``account_id bigint, counter_account_id bigint, side text ('C' credits the account, 'D'
debits it), amount_minor bigint, purpose text``, with at most one row per account, every
account in the currency of its counter account. Rows with a non-positive amount are ignored.
Account rules (status, funds) are *not* checked: callers decide who is eligible and the
balance-floor CHECK constraint remains the last line of defence. Postings made here are
channel ``batch`` and carry ``details`` (e.g. the EOD idempotency marker) on every journal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection

from outbox import events as outbox_events
from outbox.nudge import nudge_on_commit

DEFAULT_JOURNAL_SIZE = 32


@dataclass(frozen=True, slots=True)
class BulkPosted:
    journals: int
    entries: int
    accounts: int  # distinct accounts of the source legs
    credit_minor: int  # sum of the source legs that credit their account
    debit_minor: int  # sum of the source legs that debit their account


_SQL = """
WITH {prelude}
src AS ({source}),
legs AS (
    SELECT s.account_id::bigint AS account_id, s.counter_account_id::bigint AS counter_account_id,
           s.side::text AS side, s.amount_minor::bigint AS amount_minor, s.purpose::text AS purpose,
           (row_number() OVER (PARTITION BY s.counter_account_id ORDER BY s.account_id) - 1)
               / %(journal_size)s AS grp
      FROM src s
     WHERE s.amount_minor > 0
),
groups AS MATERIALIZED (
    SELECT g.counter_account_id, g.grp, g.net, g.legs, g.credit, g.debit,
           g.accounts, g.sides, g.amounts, g.purposes,
           nextval('{journal_seq}') AS journal_id,
           'T' || lpad(nextval('ledger_txn_seq')::text, 12, '0') AS txn_id
      FROM (SELECT l.counter_account_id, l.grp,
                   sum(CASE l.side WHEN 'C' THEN l.amount_minor ELSE -l.amount_minor END) AS net,
                   count(*) AS legs,
                   coalesce(sum(l.amount_minor) FILTER (WHERE l.side = 'C'), 0) AS credit,
                   coalesce(sum(l.amount_minor) FILTER (WHERE l.side = 'D'), 0) AS debit,
                   array_agg(l.account_id) AS accounts, array_agg(l.side) AS sides,
                   array_agg(l.amount_minor) AS amounts, array_agg(l.purpose) AS purposes
              FROM legs l
          GROUP BY l.counter_account_id, l.grp
          ORDER BY l.counter_account_id, l.grp) g
),
-- Each group carries its legs as arrays: joining legs back to their group by key would
-- leave the plan to the row estimate of the source, which is often 1 for a data-modifying
-- CTE, and a nested loop over (legs x groups) is quadratic in the batch.
moves AS (
    SELECT u.account_id, g.journal_id, u.side, u.amount_minor, u.purpose,
           CASE u.side WHEN 'C' THEN u.amount_minor ELSE -u.amount_minor END AS delta
      FROM groups g
     CROSS JOIN LATERAL unnest(g.accounts, g.sides, g.amounts, g.purposes)
           AS u(account_id, side, amount_minor, purpose)
    UNION ALL
    SELECT g.counter_account_id, g.journal_id, CASE WHEN g.net > 0 THEN 'D' ELSE 'C' END,
           abs(g.net), %(counter_purpose)s, -g.net
      FROM groups g
     WHERE g.net <> 0
),
locked AS MATERIALIZED (
    SELECT b.account_id, b.ledger_minor, b.currency, b.is_office
      FROM ledger_balance b
     WHERE b.account_id IN (SELECT m.account_id FROM moves m)
  ORDER BY b.account_id
       FOR NO KEY UPDATE
),
new_journals AS (
    INSERT INTO ledger_journal (id, txn_id, txn_type, channel, status, business_date,
                                entered_at, posted_at, narration, details)
    SELECT g.journal_id, g.txn_id, %(txn_type)s, 'batch', 'posted', %(business_date)s,
           %(now)s, %(now)s, %(narration)s, %(details)s::jsonb
      FROM groups g
    RETURNING 1
),
new_entries AS (
    INSERT INTO ledger_entry (journal_id, account_id, side, amount_minor, currency,
                              business_date, balance_after_minor, purpose)
    SELECT m.journal_id, m.account_id, m.side, m.amount_minor, k.currency, %(business_date)s,
           CASE WHEN NOT k.is_office
                THEN k.ledger_minor + sum(m.delta) OVER (PARTITION BY m.account_id
                                                         ORDER BY m.journal_id
                                                         ROWS UNBOUNDED PRECEDING) END,
           m.purpose
      FROM moves m JOIN locked k ON k.account_id = m.account_id
  ORDER BY m.journal_id
    RETURNING 1
),
moved AS (
    UPDATE ledger_balance b
       SET ledger_minor = b.ledger_minor + d.delta
      FROM (SELECT m.account_id, sum(m.delta) AS delta FROM moves m GROUP BY m.account_id) d
     WHERE b.account_id = d.account_id
    RETURNING 1
),
announced AS (
    SELECT {posted_event} AS id
      FROM (SELECT g.*, c.account_number, c.currency
              FROM groups g JOIN accounts_account c ON c.id = g.counter_account_id
             ORDER BY g.journal_id) g
)
SELECT (SELECT count(*) FROM new_journals), (SELECT count(*) FROM new_entries),
       (SELECT count(*) FROM moved), (SELECT count(DISTINCT account_id) FROM legs),
       (SELECT coalesce(sum(amount_minor), 0) FROM legs WHERE side = 'C'),
       (SELECT coalesce(sum(amount_minor), 0) FROM legs WHERE side = 'D'),
       (SELECT count(id) FROM announced)
"""

# One ``transaction.posted`` per journal, written by the posting statement itself (so it
# commits with the journal and a re-run that posts nothing announces nothing). Its data is a
# summary, not the per-leg list of a single posting: a bulk journal carries up to
# ``journal_size`` customers' legs, which the journal's entries hold for whoever needs them.
# The journal's total is the larger of its customer credits and debits: the counter leg makes
# up the difference on the other side.
_POSTED_EVENT = outbox_events.enqueue_sql(
    outbox_events.EventType.TRANSACTION_POSTED,
    aggregate_id="g.txn_id",
    time="%(now)s",
    business_date="%(business_date)s",
    sequence="1",
    data=f"""jsonb_build_object(
        'txn_id', g.txn_id, 'journal_id', g.journal_id, 'txn_type', %(txn_type)s::text,
        'channel', 'batch', 'status', 'posted', 'bulk', true,
        'business_date', %(business_date)s::date, 'narration', %(narration)s::text,
        'currency', g.currency, 'counter_account', g.account_number,
        'customer_legs', g.legs, 'leg_count', g.legs + (g.net <> 0)::int,
        'total', {outbox_events.wire_amount_sql("greatest(g.credit, g.debit)", "g.currency")},
        'customer_credit', {outbox_events.wire_amount_sql("g.credit", "g.currency")},
        'customer_debit', {outbox_events.wire_amount_sql("g.debit", "g.currency")})""",
)

_journal_seq: str | None = None


def _journal_sequence() -> str:
    global _journal_seq
    if _journal_seq is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence('ledger_journal', 'id')")
            _journal_seq = str(cursor.fetchone()[0])
    return _journal_seq


def bulk_post(
    *,
    source_sql: str,
    source_params: dict[str, Any],
    txn_type: str,
    business_date: date,
    now: datetime,
    narration: str,
    details: dict[str, Any],
    counter_purpose: str,
    with_sql: str = "",
    journal_size: int = DEFAULT_JOURNAL_SIZE,
) -> BulkPosted:
    """Post every leg of ``source_sql`` against its counter account, in one statement.

    ``source_sql`` uses ``%(name)s`` placeholders filled from ``source_params`` (names must
    not clash with this function's own: journal_size, counter_purpose,
    txn_type, business_date, now, narration, details). ``with_sql`` is prepended to the
    statement's WITH list (each CTE followed by a comma), so the source can read a
    data-modifying CTE such as ``taken AS (UPDATE ... RETURNING ...),``. Requires the
    caller's transaction, and holds the touched balance rows locked until it ends.

    :raises django.db.IntegrityError: if a debit would pass an account's balance floor, or
        a leg's account has no balance row (the entry would not balance its journal)
    """
    assert connection.in_atomic_block, "bulk_post requires the caller's transaction"
    assert 1 <= journal_size <= 1000, "a journal of more legs would be unreadable"
    params = {
        **source_params,
        "journal_size": journal_size,
        "counter_purpose": counter_purpose,
        "txn_type": txn_type,
        "business_date": business_date,
        "now": now,
        "narration": narration,
        "details": json.dumps(details, separators=(",", ":")),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _SQL.format(
                prelude=with_sql,
                source=source_sql,
                journal_seq=_journal_sequence(),
                posted_event=_POSTED_EVENT,
            ),
            params,
        )
        journals, entries, _moved, accounts, credit, debit, announced = cursor.fetchone()
    if announced:
        nudge_on_commit()
    return BulkPosted(
        journals=int(journals),
        entries=int(entries),
        accounts=int(accounts),
        credit_minor=int(credit),
        debit_minor=int(debit),
    )
