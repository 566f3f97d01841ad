"""Daily interest accrual and month-end capitalisation, set-based.

Design overview: every customer account has one ``InterestAccrual`` row. The daily accrual
is one ``UPDATE ... FROM`` per batch of account ids that adds ``balance x rate x year
fraction`` in exact integer units (``interest.daycount``) to the credit or debit side of each
row and moves ``accrued_through`` to the window's end. The year fraction depends only on the
product (rate, basis) and on the row's ``accrued_through``, so Python computes it exactly for
the handful of distinct (product, start) pairs and the statement joins them: no per-row
function call. On the last business day of a month, capitalisation takes the whole minor
units from each row and posts them with ``ledger.bulk.bulk_post`` in the same statement that
stamps ``capitalised_on``, so a batch either posts and stamps, or does neither.

Batches commit one by one: a kill loses at most the batch in flight, and a re-run skips the
rows whose ``accrued_through`` / ``capitalised_on`` already show the work was done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from interest.daycount import UNITS_PER_MINOR, period_year_units, rate_scaled
from interest.selectors import AccrualWindow, interest_offices, interest_terms_in_force
from ledger.bulk import bulk_post

DEFAULT_BATCH = 250_000
INTEREST_PURPOSE = "interest"

Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    return None


def accrual_rows_open() -> int:
    """Give every open customer account without one an accrual row; return how many.

    A new account accrues from the day it was opened.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # On a first run the table looks empty to the planner, which then picks a nested loop
        # that re-reads the rows this very statement inserts: quadratic. A hash anti-join
        # reads the table once. The setting is put back after the statement: SET LOCAL lasts
        # to the end of the *outermost* transaction (EOD runs this step inside one), and a
        # later bulk posting planned with nested loops disabled costs 10^10, which also
        # switches on JIT compilation (two seconds a statement, seen in the EOD tests).
        cursor.execute("SELECT current_setting('enable_nestloop')")
        previous = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            """INSERT INTO interest_accrual (account_id, credit_units, debit_units,
                                             accrued_through)
               SELECT c.id, 0, 0, c.opened_on - 1
                 FROM accounts_account c
                WHERE c.kind = 'customer' AND c.status <> 'closed'
                  AND NOT EXISTS (SELECT 1 FROM interest_accrual a WHERE a.account_id = c.id)
               ON CONFLICT (account_id) DO NOTHING"""
        )
        opened = cursor.rowcount
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [previous])
        return opened


def _id_batches(batch_size: int) -> tuple[list[tuple[int, int]], int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(account_id), max(account_id), count(*) FROM interest_accrual")
        low, high, total = cursor.fetchone()
    if low is None:
        return [], 0
    return [(lo, lo + batch_size) for lo in range(low, high + 1, batch_size)], int(total)


_ACCRUE_SQL = """
UPDATE interest_accrual a
   SET credit_units = a.credit_units
           + CASE WHEN b.ledger_minor > 0 THEN b.ledger_minor * f.credit_mult ELSE 0 END,
       debit_units = a.debit_units
           + CASE WHEN b.ledger_minor < 0 THEN -b.ledger_minor * f.debit_mult ELSE 0 END,
       accrued_through = %(to)s
  FROM ledger_balance b, accounts_account c,
       unnest(%(f_product)s::bigint[], %(f_start)s::date[], %(f_credit)s::numeric[],
              %(f_debit)s::numeric[]) AS f(product_id, start_on, credit_mult, debit_mult)
 WHERE a.account_id >= %(lo)s AND a.account_id < %(hi)s
   AND a.accrued_through < %(to)s
   AND b.account_id = a.account_id
   AND c.id = a.account_id
   -- The same range on every table lets each be read by an index range scan, not in full.
   AND b.account_id >= %(lo)s AND b.account_id < %(hi)s
   AND c.id >= %(lo)s AND c.id < %(hi)s
   AND f.product_id = c.product_id AND f.start_on = a.accrued_through
"""


@dataclass(frozen=True)
class AccrualDone:
    rows: int  # accounts accrued by this call (0 on a re-run)
    opened: int  # accrual rows created for new accounts
    accrue_to: str


def interest_accrue(
    *, window: AccrualWindow, batch_size: int = DEFAULT_BATCH, progress: Progress = _no_progress
) -> AccrualDone:
    """Accrue every account's interest through ``window.accrue_to`` at its current balance.

    Idempotent: rows already accrued through that day are skipped. Commits per batch.
    """
    opened = accrual_rows_open()
    terms = interest_terms_in_force(on=window.business_date)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT accrued_through FROM interest_accrual WHERE accrued_through < %s",
            [window.accrue_to],
        )
        starts = [row[0] for row in cursor.fetchall()]
    factors: dict[str, list[object]] = {
        "f_product": [],
        "f_start": [],
        "f_credit": [],
        "f_debit": [],
    }
    for t in terms:
        credit, debit = rate_scaled(t.credit_rate), rate_scaled(t.debit_rate)
        for start in starts:
            year_units = period_year_units(t.basis, start, window.accrue_to)
            factors["f_product"].append(t.product_id)
            factors["f_start"].append(start)
            factors["f_credit"].append(credit * year_units)
            factors["f_debit"].append(debit * year_units)
    batches, total = _id_batches(batch_size)
    done = 0
    for lo, hi in batches:
        if not starts:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_ACCRUE_SQL, {**factors, "to": window.accrue_to, "lo": lo, "hi": hi})
            done += cursor.rowcount
        progress(done, total)
    return AccrualDone(rows=done, opened=opened, accrue_to=window.accrue_to.isoformat())


# Takes the whole minor units off each row and returns them as legs; bulk_post posts them in
# the same statement. Debit interest never pushes an account past its overdraft floor: what
# would stays accrued and is charged when there is room.
#
# Withholding tax, where the product's terms in force say so (``withholding_tax_rate``
# percent), is taken from the credit interest in the same statement: each account's tax is
# rounded half to even (``BANKERS_ROUNDING``) once, never more than its interest, and posted
# as a second leg (D the customer, C the branch's tax payable), so the customer nets
# interest minus tax. An account whose product withholds but whose branch has no tax payable
# account in its currency keeps its interest accrued, as one without interest offices does.
_TAKEN_CTE = """
withholding AS MATERIALIZED (
    SELECT DISTINCT ON (product_id) product_id, withholding_tax_rate AS rate
      FROM accounts_productterms
     WHERE effective_from <= %(cap_date)s
     ORDER BY product_id, effective_from DESC
),
taken AS (
    UPDATE interest_accrual a
       SET credit_units = a.credit_units - t.cr * %(units)s,
           debit_units = a.debit_units - t.dr * %(units)s,
           capitalised_on = %(cap_date)s
      FROM (SELECT x.account_id, o.expense_id, o.income_id, o.tax_id,
                   div(x.credit_units, %(units)s) AS cr,
                   least(div(x.debit_units, %(units)s),
                         greatest(b.ledger_minor + b.overdraft_limit_minor, 0)) AS dr,
                   coalesce(w.rate, 0) AS wrate
              FROM interest_accrual x
              JOIN ledger_balance b ON b.account_id = x.account_id
              JOIN accounts_account c ON c.id = x.account_id
              JOIN unnest(%(o_branch)s::bigint[], %(o_currency)s::text[],
                          %(o_expense)s::bigint[], %(o_income)s::bigint[],
                          %(o_tax)s::bigint[])
                   AS o(branch_id, currency, expense_id, income_id, tax_id)
                ON o.branch_id = c.branch_id AND o.currency = c.currency
              LEFT JOIN withholding w ON w.product_id = c.product_id
             WHERE x.account_id >= %(lo)s AND x.account_id < %(hi)s
               AND b.account_id >= %(lo)s AND b.account_id < %(hi)s
               AND c.id >= %(lo)s AND c.id < %(hi)s
               AND (x.capitalised_on IS NULL OR x.capitalised_on < %(cap_date)s)
               AND (coalesce(w.rate, 0) = 0 OR o.tax_id IS NOT NULL)
               AND (x.credit_units >= %(units)s OR x.debit_units >= %(units)s)) t
     WHERE a.account_id = t.account_id
    RETURNING a.account_id, t.expense_id, t.income_id, t.tax_id, t.cr, t.dr,
              least(t.cr, CASE WHEN t.cr * t.wrate / 100 - floor(t.cr * t.wrate / 100) = 0.5
                               THEN floor(t.cr * t.wrate / 100)
                                    + mod(floor(t.cr * t.wrate / 100), 2)
                               ELSE round(t.cr * t.wrate / 100) END)::bigint AS tax
),
"""

_TAKEN_LEGS = """
SELECT account_id, expense_id AS counter_account_id, 'C' AS side, cr AS amount_minor,
       'interest' AS purpose
  FROM taken
UNION ALL
SELECT account_id, income_id, 'D', dr, 'interest' FROM taken
UNION ALL
SELECT account_id, tax_id, 'D', tax, 'withholding_tax' FROM taken WHERE tax > 0
"""


@dataclass(frozen=True)
class CapitalisationDone:
    accounts: int  # accounts whose interest was posted by this call
    journals: int
    entries: int
    credit_minor: int  # credit interest posted (sum over currencies: for counts, not money)
    debit_minor: int


def interest_capitalise(
    *,
    window: AccrualWindow,
    now: datetime,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress = _no_progress,
) -> CapitalisationDone:
    """Post the whole minor units accrued on every account; carry the fraction.

    Credit interest: D the branch's interest expense, C the customer. Debit interest: D the
    customer, C interest income. Exactly once per business date: each batch stamps
    ``capitalised_on`` in the statement that posts. Commits per batch.

    :raises django.db.IntegrityError: if a concurrent debit left an account with less room
        than the statement saw (the batch rolls back; re-run the step)
    """
    offices = interest_offices()
    params: dict[str, object] = {
        "units": UNITS_PER_MINOR,
        "cap_date": window.business_date,
        "o_branch": [o.branch_id for o in offices],
        "o_currency": [o.currency for o in offices],
        "o_expense": [o.expense_account_id for o in offices],
        "o_income": [o.income_account_id for o in offices],
        "o_tax": [o.tax_payable_account_id for o in offices],
    }
    marker = {
        "eod": {"date": window.business_date.isoformat(), "step": "interest", "key": "capitalise"}
    }
    batches, total = _id_batches(batch_size)
    accounts = journals = entries = credit = debit = done = 0
    for lo, hi in batches:
        with transaction.atomic():
            posted = bulk_post(
                source_sql=_TAKEN_LEGS,
                source_params={**params, "lo": lo, "hi": hi},
                with_sql=_TAKEN_CTE,
                txn_type="interest",
                business_date=window.business_date,
                now=now,
                narration="Interest capitalised",
                details=marker,
                counter_purpose=INTEREST_PURPOSE,
            )
        accounts += posted.accounts
        journals += posted.journals
        entries += posted.entries
        credit += posted.credit_minor
        debit += posted.debit_minor
        done = min(total, done + (hi - lo))
        progress(done, total)
    return CapitalisationDone(
        accounts=accounts,
        journals=journals,
        entries=entries,
        credit_minor=credit,
        debit_minor=debit,
    )


# --- periodic fees -------------------------------------------------------------------------

PERIODIC_EVENTS = ("monthly_maintenance", "below_min_balance")

# The rule in force for each account is chosen exactly as ``fees.selectors`` does for one
# account (most specific scope, then priority, then id; channel "batch" or any), but for a
# whole batch in one statement. Amounts come from Python (flat fee and its tax, rounded once
# with the house rounding), keyed by rule id. Every account in the batch gets its
# ``fees_charged_on`` stamp in the statement that posts, charged or not, so a re-run skips it.
_FEES_CTE = """
taken AS (
    UPDATE interest_accrual a
       SET fees_charged_on = %(fee_date)s
      FROM accounts_account c
      LEFT JOIN accounts_customer cu ON cu.id = c.customer_id
     WHERE c.id = a.account_id
       AND a.account_id >= %(lo)s AND a.account_id < %(hi)s
       AND (a.fees_charged_on IS NULL OR a.fees_charged_on < %(fee_date)s)
    RETURNING a.account_id, c.customer_id, c.product_id, c.currency, c.status,
              COALESCE(cu.segment, '') AS segment
),
charges AS (
    SELECT t.account_id, amt.income_account_id, amt.tax_account_id, amt.fee_minor,
           amt.tax_minor, b.ledger_minor, b.overdraft_limit_minor
      FROM taken t
      JOIN ledger_balance b ON b.account_id = t.account_id
      CROSS JOIN unnest(%(events)s::text[]) AS ev(event)
      CROSS JOIN LATERAL (
          SELECT f.id FROM fees_feerule f
           WHERE f.event = ev.event AND f.currency = t.currency
             AND f.effective_from <= %(fee_date)s
             AND (f.effective_to IS NULL OR f.effective_to > %(fee_date)s)
             AND (f.product_id IS NULL OR f.product_id = t.product_id)
             AND f.channel IN ('', 'batch')
             AND f.segment IN ('', t.segment)
           ORDER BY (f.product_id IS NOT NULL)::int + (f.channel <> '')::int
                    + (f.segment <> '')::int DESC, f.priority, f.id
           LIMIT 1) rule
      JOIN unnest(%(r_id)s::bigint[], %(r_fee)s::bigint[], %(r_tax)s::bigint[],
                  %(r_income)s::bigint[], %(r_tax_account)s::bigint[])
           AS amt(rule_id, fee_minor, tax_minor, income_account_id, tax_account_id)
        ON amt.rule_id = rule.id
     WHERE t.status = 'active'
       AND (ev.event = 'monthly_maintenance'
            OR (b.min_balance_minor > 0 AND b.ledger_minor < b.min_balance_minor))
       AND NOT EXISTS (
           SELECT 1 FROM fees_feewaiver w
            WHERE (w.account_id = t.account_id OR w.customer_id = t.customer_id)
              AND w.event IN ('', ev.event)
              AND w.valid_from <= %(fee_date)s AND w.expires_on > %(fee_date)s)
),
payable AS (
    SELECT ch.* FROM charges ch
     WHERE ch.account_id IN (
         SELECT x.account_id FROM charges x
       GROUP BY x.account_id, x.ledger_minor, x.overdraft_limit_minor
         HAVING x.ledger_minor - sum(x.fee_minor + x.tax_minor) >= -x.overdraft_limit_minor)
),
"""

_FEES_LEGS = """
SELECT account_id, income_account_id AS counter_account_id, 'D' AS side,
       fee_minor AS amount_minor, 'fee' AS purpose
  FROM payable
UNION ALL
SELECT account_id, tax_account_id, 'D', tax_minor, 'fee_tax' FROM payable WHERE tax_minor > 0
"""


@dataclass(frozen=True)
class PeriodicFeesDone:
    accounts: int  # accounts stamped by this call (charged or not)
    charged_accounts: int
    fee_minor: int  # fees and their tax debited (summed over currencies: for counts)
    journals: int
    rules: int  # flat rules in force for the periodic events
    skipped_rules: list[int]  # rules in force whose calculation is not flat (not charged)


def periodic_fees_charge(
    *,
    window: AccrualWindow,
    now: datetime,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress = _no_progress,
) -> PeriodicFeesDone:
    """Charge monthly maintenance and below-minimum-balance fees, once per business date.

    Only on a month's last business day. The fee engine's rules, scopes and waivers decide
    who pays what; flat rules only (a percentage of what? a monthly fee has no movement to
    take a percentage of), and an account that cannot pay without passing its overdraft
    floor is not charged. Commits per batch.
    """
    from banksim.core.money import Money
    from fees.calculators import tax_on
    from fees.models import FeeRule

    if not window.month_end:
        return PeriodicFeesDone(0, 0, 0, 0, 0, [])
    accrual_rows_open()  # the stamp lives on the accrual row
    day = window.business_date
    in_force = FeeRule.objects.filter(event__in=PERIODIC_EVENTS, effective_from__lte=day).exclude(
        effective_to__lte=day
    )
    r: dict[str, list[object]] = {
        "r_id": [],
        "r_fee": [],
        "r_tax": [],
        "r_income": [],
        "r_tax_account": [],
    }
    skipped: list[int] = []
    for rule in in_force.order_by("id"):
        if rule.calc_type != "flat":
            skipped.append(rule.pk)
            continue
        fee = rule.flat_minor
        if rule.min_fee_minor is not None:
            fee = max(fee, rule.min_fee_minor)
        if rule.max_fee_minor is not None:
            fee = min(fee, rule.max_fee_minor)
        tax = tax_on(Money.from_minor(fee, rule.currency), rule.tax_rate_percent).minor
        r["r_id"].append(rule.pk)
        r["r_fee"].append(fee)
        r["r_tax"].append(tax)
        r["r_income"].append(rule.income_account_id)
        r["r_tax_account"].append(rule.tax_account_id)
    marker = {"eod": {"date": day.isoformat(), "step": "periodic_fees", "key": "charge"}}
    batches, total = _id_batches(batch_size)
    accounts = charged = amount = journals = done = 0
    for lo, hi in batches:
        with transaction.atomic():
            posted = bulk_post(
                source_sql=_FEES_LEGS,
                source_params={
                    **r,
                    "fee_date": day,
                    "events": list(PERIODIC_EVENTS),
                    "lo": lo,
                    "hi": hi,
                },
                with_sql=_FEES_CTE,
                txn_type="fee",
                business_date=day,
                now=now,
                narration="Periodic fees",
                details=marker,
                counter_purpose="fee",
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM interest_accrual WHERE fees_charged_on = %s "
                    "AND account_id >= %s AND account_id < %s",
                    [day, lo, hi],
                )
                stamped = cursor.fetchone()[0]
        accounts += stamped
        charged += posted.accounts
        amount += posted.debit_minor
        journals += posted.journals
        done = min(total, done + (hi - lo))
        progress(done, total)
    return PeriodicFeesDone(
        accounts=accounts,
        charged_accounts=charged,
        fee_minor=amount,
        journals=journals,
        rules=len(r["r_id"]),
        skipped_rules=skipped,
    )
