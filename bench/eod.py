"""EOD benchmark: interest accrual and month-end capitalisation over N accounts.

Usage::

    .venv/bin/python -m bench.eod                 # 1,000,000 accounts
    .venv/bin/python -m bench.eod --accounts 100000

Seeds a throwaway database (``banksim_bench_eod``) with set-based SQL: customers, accounts
(90 % savings paying 3.65 % ACT/365 with 10 % tax withheld on it, 10 % current accounts, a
fifth of them overdrawn at 18.25 % ACT/365) and their balance rows; the money comes in
through ``ledger.bulk.bulk_post`` funding journals, so every balance is backed by entries.
Then, on a month-end business date, it times each EOD phase and, as the yardstick, a plain
``UPDATE interest_accrual SET credit_units = credit_units`` over the same rows in the same
run (and the same on ``ledger_balance``). ``ratio_accrual`` is accrual rows/s over that
plain update's rows/s. It ends with ``ledger_violations()`` (must be empty), a table, and
the ``RESULT`` line. Peak RSS of this process is printed to show memory does not grow with
N.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    database_drop,
    database_recreate,
    django_migrate,
    django_setup,
    fmt_number,
    format_table,
    log,
)

DB_NAME = "banksim_bench_eod"
BUSINESS_DATE = date(2026, 11, 30)  # a Monday, the last business day of November
OPENED_ON = date(2026, 11, 1)
CURRENCY = "USD"
SEED_BATCH = 200_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def seed_static() -> dict[str, int]:
    """Calendar, branch, GL, products with rates, and the office accounts."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Account, Branch, Calendar, GLSubHead, Product, ProductTerms
    from accounts.services import office_account_open

    now = timezone.now()
    with transaction.atomic():
        calendar = Calendar.objects.create(code="MAIN", name="Main", business_date=BUSINESS_DATE)
        branch = Branch.objects.create(sol_code="0001", name="Head office", calendar=calendar)
        heads = {
            code: GLSubHead.objects.create(code=code, name=name, category=category)
            for code, name, category in [
                ("20100", "Savings deposits", GLSubHead.Category.LIABILITY),
                ("20200", "Current deposits", GLSubHead.Category.LIABILITY),
                ("10100", "Cash", GLSubHead.Category.ASSET),
                ("50100", "Interest expense", GLSubHead.Category.EXPENSE),
                ("40200", "Interest income", GLSubHead.Category.INCOME),
                ("40100", "Fee income", GLSubHead.Category.INCOME),
                ("20900", "Tax payable", GLSubHead.Category.LIABILITY),
            ]
        }
        products = {}
        for code, scheme, head in [
            ("SBA-USD", Product.SchemeType.SAVINGS, "20100"),
            ("CAA-USD", Product.SchemeType.CURRENT, "20200"),
            ("OAB-USD", Product.SchemeType.OFFICE, "10100"),
        ]:
            products[code] = Product.objects.create(
                code=code, name=code, scheme_type=scheme, currency=CURRENCY, gl_subhead=heads[head]
            )
        ProductTerms.objects.create(
            product=products["SBA-USD"],
            effective_from=date(2020, 1, 1),
            credit_interest_rate="3.6500",
            accrual_basis="ACT/365",
            withholding_tax_rate="10.00",
        )
        ProductTerms.objects.create(
            product=products["CAA-USD"],
            effective_from=date(2020, 1, 1),
            overdraft_allowed=True,
            overdraft_limit_minor=1_000_000,
            debit_interest_rate="18.2500",
            accrual_basis="ACT/365",
        )
        ProductTerms.objects.create(product=products["OAB-USD"], effective_from=date(2020, 1, 1))
    office = {}
    for role, head in [
        (Account.OfficeRole.VAULT_CASH, "10100"),
        (Account.OfficeRole.INTEREST_EXPENSE, "50100"),
        (Account.OfficeRole.INTEREST_INCOME, "40200"),
        (Account.OfficeRole.FEE_INCOME, "40100"),
        (Account.OfficeRole.TAX_PAYABLE, "20900"),
    ]:
        office[role] = office_account_open(
            product_code="OAB-USD",
            branch_id=branch.pk,
            office_role=role,
            title=f"{role} USD",
            gl_subhead_code=head,
            business_date=BUSINESS_DATE,
            now=now,
        ).pk
    from banksim.core.money import Money
    from fees.services import fee_rule_create
    from fees.specs import FeeRuleSpec

    # Current accounts pay 1.00 a month; savings accounts nothing.
    fee_rule_create(
        spec=FeeRuleSpec(
            name="Monthly maintenance",
            event="monthly_maintenance",
            currency=CURRENCY,
            product_id=products["CAA-USD"].pk,
            calc_type="flat",
            flat_fee=Money.from_minor(100, CURRENCY),
            income_account_id=office[Account.OfficeRole.FEE_INCOME],
            effective_from=date(2020, 1, 1),
        ),
        actor=None,
    )
    return {
        "branch": branch.pk,
        "sba": products["SBA-USD"].pk,
        "caa": products["CAA-USD"].pk,
        "vault": office[Account.OfficeRole.VAULT_CASH],
    }


def seed_accounts(n: int, ids: dict[str, int]) -> None:
    """Customers, accounts and balance rows in a few INSERT ... SELECT statements."""
    from django.db import connection, transaction

    params = {**ids, "n": n, "opened": OPENED_ON, "bd": BUSINESS_DATE}
    for lo in range(1, n + 1, SEED_BATCH):
        hi = min(n, lo + SEED_BATCH - 1)
        with transaction.atomic(), connection.cursor() as cursor:
            p = {**params, "lo": lo, "hi": hi}
            cursor.execute(
                """INSERT INTO accounts_customer (cif_id, customer_type, first_name, last_name,
                       legal_name, birth_date, national_id_type, national_id, email, phone,
                       address, kyc_status, kyc_verified_on, risk_grade, segment,
                       home_branch_id, created_at)
                   SELECT 'E' || lpad(i::text, 9, '0'), 'individual', 'Bench', 'Customer' || i,
                          '', DATE '1985-05-17', 'national_id', 'EOD' || i, '', '', '',
                          'verified', %(opened)s, 'low', 'retail', %(branch)s, now()
                     FROM generate_series(%(lo)s::int, %(hi)s::int) AS i""",
                p,
            )
            # Every tenth account is a current account; the customer ids follow i's order.
            cursor.execute(
                """INSERT INTO accounts_account (account_number, kind, office_role, title,
                       customer_id, branch_id, product_id, currency, status, freeze_type,
                       status_reason, status_changed_at, opened_on)
                   SELECT '0001' || lpad((1000000 + i)::text, 8, '0'), 'customer', '',
                          'Bench Customer' || i, c.id, %(branch)s,
                          CASE WHEN i %% 10 = 0 THEN %(caa)s ELSE %(sba)s END, 'USD', 'active',
                          '', '', now(), %(opened)s
                     FROM generate_series(%(lo)s::int, %(hi)s::int) AS i
                     JOIN accounts_customer c ON c.cif_id = 'E' || lpad(i::text, 9, '0')""",
                p,
            )
            cursor.execute(
                """INSERT INTO ledger_balance (account_id, currency, ledger_minor, held_minor,
                       min_balance_minor, overdraft_limit_minor, is_office, last_activity_on)
                   SELECT a.id, 'USD', 0, 0, 0,
                          CASE WHEN a.product_id = %(caa)s THEN 1000000 ELSE 0 END, false,
                          %(bd)s
                     FROM accounts_account a
                    WHERE a.kind = 'customer'
                      AND a.account_number BETWEEN '0001' || lpad((1000000 + %(lo)s)::text, 8,
                          '0') AND '0001' || lpad((1000000 + %(hi)s)::text, 8, '0')""",
                p,
            )


def seed_funding(ids: dict[str, int], now: Any) -> tuple[int, int]:
    """Fund every account through the ledger: savings in credit, some current overdrawn."""
    from django.db import connection, transaction

    from ledger.bulk import bulk_post

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM accounts_account WHERE kind = 'customer'")
        low, high = cursor.fetchone()
    journals = entries = 0
    for lo in range(low, high + 1, SEED_BATCH):
        with transaction.atomic():
            posted = bulk_post(
                # A spread of balances from 10.00 to 5,009.99; about a third of the current
                # accounts overdrawn by as much instead.
                source_sql="""
                    SELECT a.id AS account_id, %(vault)s AS counter_account_id,
                           CASE WHEN a.product_id = %(caa)s AND a.id %% 3 = 0 THEN 'D'
                                ELSE 'C' END AS side,
                           1000 + (a.id * 7919) %% 500000 AS amount_minor,
                           'principal' AS purpose
                      FROM accounts_account a
                     WHERE a.kind = 'customer' AND a.id >= %(lo)s AND a.id < %(hi)s""",
                source_params={**ids, "lo": lo, "hi": lo + SEED_BATCH},
                txn_type="cash_deposit",
                business_date=OPENED_ON,
                now=now,
                narration="benchmark funding",
                details={"bench": "eod"},
                counter_purpose="principal",
            )
        journals += posted.journals
        entries += posted.entries
    return journals, entries


def plain_update(sql: str) -> tuple[int, float]:
    from django.db import connection, transaction

    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.rowcount
    return rows, time.perf_counter() - start


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def run(args: argparse.Namespace) -> int:
    n = args.accounts
    database_recreate(args.db_name)
    try:
        django_setup(args.db_name)
        django_migrate()
        from django.utils import timezone

        from interest.selectors import accrual_window
        from interest.services import (
            accrual_rows_open,
            interest_accrue,
            interest_capitalise,
            periodic_fees_charge,
        )
        from ledger.selectors import ledger_violations

        now = timezone.now()
        log(f"seeding {n:,} accounts into {args.db_name}")
        ids, t_static = timed(seed_static)
        _, t_accounts = timed(lambda: seed_accounts(n, ids))
        vacuum_analyze()  # the funding statement's plan needs the new rows' statistics
        (journals, entries), t_funding = timed(lambda: seed_funding(ids, now))
        _, t_vacuum = timed(vacuum_analyze)
        log(
            f"seeded: static {t_static:.1f}s, accounts {t_accounts:.1f}s, funding "
            f"{t_funding:.1f}s ({journals:,} journals, {entries:,} entries), vacuum "
            f"{t_vacuum:.1f}s; peak RSS {peak_rss_mb():.0f} MB"
        )

        opened, t_open = timed(accrual_rows_open)
        _, t_vac2 = timed(vacuum_analyze)
        ref_rows, t_ref = plain_update("UPDATE interest_accrual SET credit_units = credit_units")
        bal_rows, t_bal = plain_update("UPDATE ledger_balance SET ledger_minor = ledger_minor")
        _, t_vac3 = timed(vacuum_analyze)

        def progress_printer(name: str, started: float) -> Callable[[int, int], None]:
            def _progress(done: int, total: int) -> None:
                elapsed = time.perf_counter() - started
                rate = done / elapsed if elapsed else 0.0
                eta = (total - done) / rate if rate else 0.0
                pct = 100 * done // total if total else 100
                log(
                    f"{name:<12} {done:>9,}/{total:,}  {pct:3d}%  {rate:,.0f} rows/s  "
                    f"ETA {eta:.0f}s"
                )

            return _progress

        window = accrual_window(calendar_code="MAIN", business_date=BUSINESS_DATE)
        eod_start = time.perf_counter()
        accrued, t_accrue = timed(
            lambda: interest_accrue(
                window=window, progress=progress_printer("accrual", time.perf_counter())
            )
        )
        posted, t_cap = timed(
            lambda: interest_capitalise(
                window=window,
                now=now,
                progress=progress_printer("capitalise", time.perf_counter()),
            )
        )
        fees, t_fees = timed(
            lambda: periodic_fees_charge(
                window=window,
                now=now,
                progress=progress_printer("fees", time.perf_counter()),
            )
        )
        eod_seconds = time.perf_counter() - eod_start
        rerun, t_rerun = timed(
            lambda: (
                interest_accrue(window=window).rows,
                interest_capitalise(window=window, now=now).accounts,
                periodic_fees_charge(window=window, now=now).charged_accounts,
            )
        )
        violations, t_verify = timed(ledger_violations)

        accrual_rate = accrued.rows / t_accrue if t_accrue else 0.0
        ref_rate = ref_rows / t_ref if t_ref else 0.0
        ratio = accrual_rate / ref_rate if ref_rate else 0.0
        rows = [
            ["open accrual rows (INSERT ... SELECT)", opened, t_open, opened / t_open],
            ["reference: UPDATE interest_accrual SET x = x", ref_rows, t_ref, ref_rate],
            ["reference: UPDATE ledger_balance SET x = x", bal_rows, t_bal, bal_rows / t_bal],
            ["EOD accrual (UPDATE ... FROM, batches)", accrued.rows, t_accrue, accrual_rate],
            [
                f"EOD capitalisation ({posted.journals:,} journals, {posted.entries:,} entries)",
                posted.accounts,
                t_cap,
                posted.accounts / t_cap if t_cap else 0.0,
            ],
            [
                f"EOD periodic fees ({fees.charged_accounts:,} charged)",
                fees.accounts,
                t_fees,
                fees.accounts / t_fees if t_fees else 0.0,
            ],
            ["re-run of all three (must post nothing)", sum(rerun), t_rerun, None],
            ["ledger_violations()", len(violations), t_verify, None],
        ]
        print()
        print(
            format_table(
                ["phase", "rows", "seconds", "rows/s"],
                [
                    [name, f"{r:,}", f"{s:.2f}", "-" if rate is None else fmt_number(rate, 0)]
                    for name, r, s, rate in rows
                ],
            )
        )
        print()
        log(
            f"capitalised {posted.accounts:,} accounts: credit interest "
            f"{posted.credit_minor / 100:,.2f} USD, overdraft interest and tax withheld "
            f"{posted.debit_minor / 100:,.2f} USD; vacuums {t_vac2:.1f}s + {t_vac3:.1f}s "
            f"(outside EOD time)"
        )
        log(f"peak RSS of the benchmark process: {peak_rss_mb():.0f} MB")
        if violations or sum(rerun):
            for v in violations:
                log(f"VIOLATION {v.check}: {v.detail}")
            log("FAILED: ledger violations or a re-run posted twice")
            return 1
        print(
            f"RESULT accounts={n} eod_seconds={eod_seconds:.1f} "
            f"accrual_rows_per_s={accrual_rate:.0f} ratio_accrual={ratio:.2f}",
            flush=True,
        )
        return 0
    finally:
        from bench.common import close_db_connections

        close_db_connections()
        if not args.keep_db:
            database_drop(args.db_name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
