"""Transfer throughput against pgbench on the same server.

Usage (from the repository root, about 4 minutes with the defaults)::

    .venv/bin/python bench/transfers.py            # full run, drops its databases at the end
    .venv/bin/python bench/transfers.py --help     # durations, scale, what to skip, --keep

Phases, each a fixed window after a warm-up:

1. ``pgbench`` TPC-B-like, 8 clients, in its own throwaway database: the reference.
2. Random transfers among N funded accounts through the service layer
   (``ledger.services.movement_execute``), with 1, 4 and 8 worker processes.
3. The same through HTTP (``POST /api/v1/transfers``, token auth, one Idempotency-Key per
   request) served by gunicorn sync workers, driven by 8 client processes.
4. A hot account: every transfer debits the same account, 8 worker processes.
5. Service c8 without and with the outbox event and audit decision rows: alternating rounds,
   then interleaved rounds (every worker switches them on and off every half second, the
   SUMMARY), then split rounds (half the workers with them, a CPU diagnostic).
6. Service c8 without and with one fee rule and one limit rule in force: alternating rounds,
   then interleaved rounds (a controller process switches the rules every half second).

Then ``ledger_violations()`` must come back empty. The last lines printed are a ``SUMMARY`` line
(the outbox and audit cost) and the ``RESULT`` line (ratios are each phase's transfers/s over
pgbench's tps; ``fees_limits_cost`` is 1 - service c8 tps with the rules / without them). Both
costs are the medians of their interleaved rounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    REPO_ROOT,
    InterleavedFigures,
    Operation,
    PgbenchFailed,
    PgbenchResult,
    PhaseResult,
    WorkerFigures,
    close_db_connections,
    database_drop,
    database_recreate,
    descendant_pids,
    django_env,
    django_migrate,
    django_setup,
    fmt_number,
    fmt_ratio,
    format_table,
    free_port,
    log,
    parse_worker_counts,
    pg_backend_pids,
    pgbench_measure,
    pgbench_run,
    problem_code,
    run_interleaved_phase,
    run_phase,
    run_split_phase,
    wait_for_port,
)

BUSINESS_DATE = date(2026, 11, 30)
CURRENCY = "USD"
# Transfers move 0.01-1.00; the maker-checker threshold (1,000,000.00 by default) is far away.
MAX_TRANSFER_MINOR = 100
FUNDING_CHUNK = 500  # legs per funding journal: ledger_post's per-account check is O(legs²)
FEE = "0.10"
# Per account per day; a worker moves at most ~1.00 per transfer, so it never refuses.
LIMIT = "1000000.00"


@dataclass(frozen=True)
class SeededBank:
    account_ids: list[int]
    account_numbers: list[str]
    hot_account_id: int
    hot_account_number: str
    teller_id: int
    token: str


# --- seeding ---------------------------------------------------------------------------------


def seed_bank(*, accounts: int, funding_minor: int, hot_funding_minor: int) -> SeededBank:
    """Static data, a teller with a token, and funded customer accounts, fast.

    Customers, accounts and their zero balance rows are bulk-inserted (opening 10,000
    accounts one service call at a time would take minutes); the money then comes in through
    ``journal_post`` in a few balanced journals, so every balance is backed by entries and
    ``ledger_violations`` stays clean. Bulk inserts skip simple-history rows, which no
    invariant reads.
    """
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from accounts.models import (
        Account,
        Branch,
        Calendar,
        Customer,
        GLSubHead,
        Product,
        ProductTerms,
        StaffProfile,
    )
    from accounts.services import luhn_check_digit, office_account_open
    from banksim.core.money import Money
    from ledger.models import AccountBalance
    from ledger.posting import Leg, journal_post

    now = timezone.now()
    with transaction.atomic():
        calendar = Calendar.objects.create(
            code="MAIN", name="Main calendar", business_date=BUSINESS_DATE
        )
        branch = Branch.objects.create(sol_code="0001", name="Head office", calendar=calendar)
        deposits = GLSubHead.objects.create(
            code="20100", name="Savings deposits", category=GLSubHead.Category.LIABILITY
        )
        cash = GLSubHead.objects.create(
            code="10100", name="Cash", category=GLSubHead.Category.ASSET
        )
        savings = Product.objects.create(
            code=f"SBA-{CURRENCY}",
            name="Savings",
            scheme_type=Product.SchemeType.SAVINGS,
            currency=CURRENCY,
            gl_subhead=deposits,
        )
        office = Product.objects.create(
            code=f"OAB-{CURRENCY}",
            name="Office",
            scheme_type=Product.SchemeType.OFFICE,
            currency=CURRENCY,
            gl_subhead=cash,
        )
        for product in (savings, office):
            ProductTerms.objects.create(product=product, effective_from=date(2020, 1, 1))
        teller = User.objects.create_user(username="bench_teller", password=None)
        teller.groups.add(Group.objects.get_or_create(name="teller")[0])
        StaffProfile.objects.create(user=teller, branch=branch)
        token = Token.objects.create(user=teller)

    vault = office_account_open(
        product_code=office.code,
        branch_id=branch.pk,
        office_role=Account.OfficeRole.VAULT_CASH,
        title="Vault cash (benchmark funding)",
        business_date=BUSINESS_DATE,
        now=now,
    )

    with transaction.atomic():
        customers = Customer.objects.bulk_create(
            [
                Customer(
                    cif_id=f"B{i:09d}",
                    customer_type=Customer.CustomerType.INDIVIDUAL,
                    first_name="Bench",
                    last_name=f"Customer{i}",
                    birth_date=date(1985, 5, 17),
                    national_id_type=Customer.IdType.NATIONAL_ID,
                    national_id=f"BENCH{i:08d}",
                    kyc_status=Customer.KycStatus.VERIFIED,
                    kyc_verified_on=BUSINESS_DATE,
                    home_branch=branch,
                    created_at=now,
                )
                for i in range(accounts)
            ],
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval('accounts_account_serial_seq') FROM generate_series(1, %s)",
                [accounts],
            )
            serials = [row[0] for row in cursor.fetchall()]
        opened = Account.objects.bulk_create(
            [
                Account(
                    account_number=(base := f"{branch.sol_code}{serial:07d}")
                    + luhn_check_digit(base),
                    kind=Account.Kind.CUSTOMER,
                    title=f"Bench Customer{i}",
                    customer=customer,
                    branch=branch,
                    product=savings,
                    currency=CURRENCY,
                    status=Account.Status.ACTIVE,
                    status_changed_at=now,
                    opened_on=BUSINESS_DATE,
                )
                for i, (customer, serial) in enumerate(zip(customers, serials, strict=True))
            ],
            batch_size=2000,
        )
        AccountBalance.objects.bulk_create(
            [
                AccountBalance(
                    account=account,
                    currency=CURRENCY,
                    is_office=False,
                    last_activity_on=BUSINESS_DATE,
                )
                for account in opened
            ],
            batch_size=2000,
        )

    hot = opened[0]
    for start in range(0, len(opened), FUNDING_CHUNK):
        chunk = opened[start : start + FUNDING_CHUNK]
        amounts = [hot_funding_minor if a.pk == hot.pk else funding_minor for a in chunk]
        with transaction.atomic():
            journal_post(
                legs=[Leg(vault.pk, "D", Money.from_minor(sum(amounts), CURRENCY))]
                + [
                    Leg(a.pk, "C", Money.from_minor(m, CURRENCY))
                    for a, m in zip(chunk, amounts, strict=True)
                ],
                txn_type="cash_deposit",
                channel="batch",
                business_date=BUSINESS_DATE,
                now=now,
                narration="benchmark funding",
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return SeededBank(
        account_ids=[a.pk for a in opened],
        account_numbers=[a.account_number for a in opened],
        hot_account_id=hot.pk,
        hot_account_number=hot.account_number,
        teller_id=teller.pk,
        token=token.key,
    )


# --- fee and limit rules --------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRules:
    fee_rule_id: int
    limit_rule_id: int


def rules_create(bank: SeededBank) -> BenchRules:
    """One flat transfer fee and one daily amount limit on the savings product, through the
    services, both in force; ``rules_switch`` turns them off and on between rounds.

    The fee is credited to a fee-income office account opened here (the seed has none). The
    limit is far above what a run can move, so it is checked and consumed on every transfer
    but never refuses: the phase prices the checks, not the refusals.
    """
    from django.contrib.auth.models import User
    from django.utils import timezone

    from accounts.models import Account, Branch, Product
    from accounts.services import office_account_open
    from banksim.core.money import Money
    from fees.services import fee_rule_create
    from fees.specs import FeeRuleSpec
    from limits.services import LimitRuleSpec, limit_rule_create

    now = timezone.now()
    actor = User.objects.get(pk=bank.teller_id)
    savings = Product.objects.get(code=f"SBA-{CURRENCY}")
    income = office_account_open(
        product_code=f"OAB-{CURRENCY}",
        branch_id=Branch.objects.get(sol_code="0001").pk,
        office_role=Account.OfficeRole.FEE_INCOME,
        title="Fee income (benchmark)",
        business_date=BUSINESS_DATE,
        now=now,
    )
    fee = fee_rule_create(
        spec=FeeRuleSpec(
            name="Bench transfer fee",
            event="transfer_out",
            currency=CURRENCY,
            calc_type="flat",
            flat_fee=Money.parse(FEE, CURRENCY),
            income_account_id=income.pk,
            # A day early, so switching off (``effective_to`` = the business date) is valid.
            effective_from=BUSINESS_DATE - timedelta(days=1),
            product_id=savings.pk,
            channel="api",
        ),
        actor=actor,
    )
    limit = limit_rule_create(
        spec=LimitRuleSpec(
            currency=CURRENCY,
            max_amount=Money.parse(LIMIT, CURRENCY),
            product_id=savings.pk,
            name="Bench daily transfer limit",
        ),
        actor=actor,
        now=now,
    )
    return BenchRules(fee_rule_id=fee.pk, limit_rule_id=limit.pk)


def rules_switch(rules: BenchRules, *, on: bool) -> None:
    """Put both rules in force or out of force on the benchmark's business date."""
    from django.utils import timezone

    from fees.services import fee_rule_update
    from limits.services import LimitRuleChanges, limit_rule_update

    fee_rule_update(
        rule_id=rules.fee_rule_id,
        changes={"effective_to": None if on else BUSINESS_DATE},
        actor=None,
    )
    limit_rule_update(
        rule_id=rules.limit_rule_id,
        changes=LimitRuleChanges(is_active=on),
        actor=None,
        now=timezone.now(),
    )


# --- operations (built inside each worker process) -------------------------------------------


def _pair(rng: random.Random, n: int, hot: int | None) -> tuple[int, int]:
    """Indexes of a distinct (debit, credit) pair; the debit is ``hot`` when given."""
    debit = hot if hot is not None else rng.randrange(n)
    credit = rng.randrange(n)
    while credit == debit:
        credit = rng.randrange(n)
    return debit, credit


def office_fold() -> None:
    """Fold office-balance deltas, as Celery beat does every few seconds in a real run."""
    from ledger.services import office_balances_fold

    office_balances_fold()


def service_factory(bank: SeededBank, *, hot: bool, seed: int) -> Any:
    def factory(index: int) -> Operation:
        from django.contrib.auth.models import User

        from banksim.core import clock
        from banksim.core.errors import DomainError
        from banksim.core.money import Money
        from ledger.services import Channel, Movement, TxnType, movement_execute

        rng = random.Random(seed * 1000 + index)
        actor = User.objects.get(pk=bank.teller_id)
        ids = bank.account_ids
        hot_index = 0 if hot else None

        def transfer() -> str | None:
            debit, credit = _pair(rng, len(ids), hot_index)
            movement = Movement(
                txn_type=TxnType.TRANSFER,
                debit_account_id=ids[debit],
                credit_account_id=ids[credit],
                amount=Money.from_minor(rng.randint(1, MAX_TRANSFER_MINOR), CURRENCY),
                channel=Channel.API,
            )
            try:
                result = movement_execute(
                    movement=movement, actor=actor, business_date=BUSINESS_DATE, now=clock.now()
                )
            except DomainError as exc:
                return exc.code
            return None if result.posted else "entered_for_approval"

        return transfer

    return factory


def http_factory(bank: SeededBank, *, port: int, seed: int) -> Any:
    def factory(index: int) -> Operation:
        rng = random.Random(seed * 1000 + index)
        numbers = bank.account_numbers
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        base_headers = {
            "Authorization": f"Token {bank.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

        def transfer() -> str | None:
            debit, credit = _pair(rng, len(numbers), None)
            minor = rng.randint(1, MAX_TRANSFER_MINOR)
            body = json.dumps(
                {
                    "debit_account": numbers[debit],
                    "credit_account": numbers[credit],
                    "amount": f"{minor // 100}.{minor % 100:02d}",
                    "currency": CURRENCY,
                }
            )
            headers = {**base_headers, "Idempotency-Key": str(uuid.uuid4())}
            try:
                conn.request("POST", "/api/v1/transfers", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                # Sync gunicorn workers close after each response; reconnect on the next call.
                conn.close()
                return type(exc).__name__
            if response.status == 201:
                return None
            return problem_code(response.status, payload)

        return transfer

    return factory


def service_cpu_groups(db_name: str) -> Any:
    return lambda workers: {"client": workers, "postgres": pg_backend_pids(db_name)}


# --- HTTP server -----------------------------------------------------------------------------


def transfers_route_exists() -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/v1/transfers")
    except Resolver404:
        return False
    return True


def gunicorn_start(*, db_name: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **django_env(db_name)}
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "banksim.wsgi",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--timeout",
        "60",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
    wait_for_port(port, timeout=30, proc=proc)
    return proc


def http_probe(bank: SeededBank, port: int) -> tuple[int, str]:
    """One real transfer: tells whether the endpoint exists and answers 201."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            "/api/v1/transfers",
            body=json.dumps(
                {
                    "debit_account": bank.account_numbers[1],
                    "credit_account": bank.account_numbers[2],
                    "amount": "0.01",
                    "currency": CURRENCY,
                }
            ),
            headers={
                "Authorization": f"Token {bank.token}",
                "Content-Type": "application/json",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")[:300]
    finally:
        conn.close()


def sql_ceiling(args: argparse.Namespace, bank: SeededBank) -> PgbenchResult | None:
    """The posting function alone, driven by pgbench: what the database does without Python.

    Same random transfers as the service phase, one ``ledger_post`` per transaction with an
    outbox event like the one the service passes, so the gap to the service phase is the
    application's share and the gap to pgbench TPC-B is the posting function's.
    """
    low, high = min(bank.account_ids), max(bank.account_ids)
    if high - low + 1 != len(bank.account_ids):
        log("  skipped: account ids are not contiguous")
        return None
    event = json.dumps(
        {
            "type": "banksim.transaction.posted",
            "source": "/banksim/ledger",
            "sequence": 1,
            "exponent": 2,
            "data": {"txn_type": "transfer", "channel": "api", "amount": "0.50", "fees": []},
        }
    )
    script = f"""\\set d random({low}, {high})
\\set c random({low}, {high - 1})
\\set amt random(1, {MAX_TRANSFER_MINOR})
BEGIN;
SELECT journal_id, txn_id FROM ledger_post(NULL, 'transfer', 'api', '{BUSINESS_DATE}', now(), '',
  {bank.teller_id}, NULL, NULL, '{{}}'::jsonb, '{CURRENCY}',
  ARRAY[:d, CASE WHEN :c >= :d THEN :c + 1 ELSE :c END]::bigint[], ARRAY['D', 'C']::text[],
  ARRAY[:amt, :amt]::bigint[], ARRAY['principal', 'principal']::text[], true, true,
  '{{}}'::bigint[], p_event => '{event}'::jsonb);
COMMIT;
"""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="bench_ledger_post_") as f:
        f.write(script)
        f.flush()
        try:
            return pgbench_measure(
                db_name=args.db,
                clients=args.clients,
                threads=min(2, args.clients),
                seconds=max(1, round(args.duration)),
                extra=["-n", "-f", f.name],
            )
        except PgbenchFailed as exc:
            # A diagnostic: a changed ledger_post signature must not sink the whole run.
            log(f"  skipped: {str(exc).strip().splitlines()[-1]}")
            return None


def http_phase(args: argparse.Namespace, bank: SeededBank) -> PhaseResult:
    name = "http"
    if not transfers_route_exists():
        return PhaseResult(
            name=name, workers=args.clients, seconds=args.duration, skipped="n/a: no route"
        )
    port = free_port()
    proc = gunicorn_start(db_name=args.db, workers=args.gunicorn_workers, port=port)
    try:
        status, body = http_probe(bank, port)
        if status == 404:
            return PhaseResult(
                name=name, workers=args.clients, seconds=args.duration, skipped="n/a: 404"
            )
        if status != 201:
            log(f"  probe transfer answered {status}: {body}")
        return run_phase(
            name=name,
            workers=args.clients,
            factory=http_factory(bank, port=port, seed=args.seed),
            warmup=args.warmup,
            duration=args.duration,
            cpu_groups=lambda workers: {
                "client": workers,
                "gunicorn": descendant_pids(proc.pid),
                "postgres": pg_backend_pids(args.db),
            },
            housekeeping=office_fold,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pgbench_cpu_row(name: str, result: PgbenchResult) -> list[object]:
    pg = result.postgres_cpu_ms or 0.0
    return [
        name,
        result.clients,
        fmt_number(result.client_cpu_ms, 2),
        "n/a",
        fmt_number(result.postgres_cpu_ms, 2),
        f"{pg + (result.client_cpu_ms or 0):.2f}",
        f"{(result.machine_busy or 0) * 100:.0f}%",
    ]


def fmt_cost(comparison: Comparison | InterleavedComparison | None) -> str:
    cost = comparison.cost if comparison is not None else None
    return "n/a" if cost is None else f"{cost:.3f}"


def _pgbench_failures(output: str) -> str:
    found = re.search(r"number of failed transactions: ([0-9]+)", output)
    return f"failed x{found.group(1)}" if found and found.group(1) != "0" else "-"


# --- without/with comparisons ----------------------------------------------------------------


@dataclass
class Comparison:
    """Alternating rounds of the same service phase without and with one thing switched on."""

    label: str
    without: list[PhaseResult]
    with_: list[PhaseResult]

    @property
    def tps_without(self) -> float | None:
        return _median_tps(self.without)

    @property
    def tps_with(self) -> float | None:
        return _median_tps(self.with_)

    @property
    def cost(self) -> float | None:
        """1 - tps with / tps without: the share of throughput the switched-on thing costs.

        The median of each round's own ratio: a round's two phases run back to back, so a
        drift of the machine's speed over minutes (seen here: 20 % between rounds of the
        same code) weighs on both sides of a ratio alike instead of on one side's median.
        """
        return _median(self.round_costs)

    @property
    def round_costs(self) -> list[float]:
        return [
            1 - on.tps / off.tps
            for off, on in zip(self.without, self.with_, strict=False)
            if off.tps and not off.skipped and not on.skipped
        ]


def _middle_half(costs: list[float]) -> str:
    """The rounds' interquartile range: how far one run's figure can be trusted."""
    if len(costs) < 4:
        return ""
    low, _, high = statistics.quantiles(costs, n=4)
    return f"; middle half of the rounds {low * 100:.1f}-{high * 100:.1f} %"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _median_tps(phases: list[PhaseResult]) -> float | None:
    return _median([p.tps for p in phases])


def compare(
    args: argparse.Namespace,
    bank: SeededBank,
    *,
    label: str,
    switch: Any,
    seed: int,
) -> Comparison:
    """Run ``args.rounds`` service phases each way, ``switch(on)`` before each.

    Rounds go without-with, then with-without (ABBA), so a drift in the machine's load over
    the run weighs on both sides alike.
    """
    top = args.worker_counts[-1]
    result = Comparison(label=label, without=[], with_=[])
    for round_no in range(args.rounds):
        order = (False, True) if round_no % 2 == 0 else (True, False)
        for on in order:
            switch(on)
            close_db_connections()
            side = "with" if on else "without"
            log(f"service c{top} {side} {label} (round {round_no + 1}/{args.rounds})")
            phase = run_phase(
                name=f"service {side} {label}",
                workers=top,
                factory=service_factory(bank, hot=False, seed=seed + round_no),
                warmup=args.warmup,
                duration=args.duration,
                cpu_groups=service_cpu_groups(args.db),
                housekeeping=office_fold,
            )
            (result.with_ if on else result.without).append(phase)
    return result


def outbox_audit_switch(on: bool) -> None:
    """Write (True) or skip (False) the posting's outbox event and audit decision row.

    Only this process's settings change; the phase's workers are forked from it.
    """
    from django.conf import settings

    settings.OUTBOX_BENCH_SKIP_POSTING_EVENTS = not on
    settings.AUDIT_BENCH_SKIP_DECISIONS = not on


@dataclass
class SplitComparison:
    """Rounds in which half the workers run with the thing switched on, half without."""

    label: str
    # Per round: CPU ms per transfer (worker + its backend) without, with; tps without, with.
    rounds: list[tuple[float, float, float, float]]

    @property
    def cpu_ratios(self) -> list[float]:
        return [on / off for off, on, _, _ in self.rounds if off and on]

    @property
    def cpu_ratio(self) -> float | None:
        """Median over the rounds of (CPU per transfer with) / (CPU per transfer without)."""
        return _median(self.cpu_ratios)


def split_compare(
    args: argparse.Namespace, bank: SeededBank, *, label: str, switch: Any, seed: int
) -> SplitComparison:
    """``args.split_rounds`` phases, each with the odd workers switched on (even ones the next
    round), every worker costing its own transfers' CPU (``run_split_phase``)."""
    top = args.worker_counts[-1]
    result = SplitComparison(label=label, rounds=[])
    for round_no in range(args.split_rounds):
        flip = round_no % 2 == 1
        service = service_factory(bank, hot=False, seed=seed + round_no)

        def switched_on(index: int, *, flip: bool = flip) -> bool:
            return (index % 2 == 1) != flip

        def factory(
            index: int, *, on: Callable[[int], bool] = switched_on, service: Any = service
        ) -> Operation:
            # Runs in the forked worker: only that process's settings change.
            switch(on(index))
            return service(index)

        close_db_connections()
        log(f"service c{top} split {label}: half with, half without (round {round_no + 1})")
        workers = run_split_phase(
            workers=top, factory=factory, warmup=args.warmup, duration=args.duration
        )
        sides: dict[bool, list[WorkerFigures]] = {False: [], True: []}
        for figures in workers:
            sides[switched_on(figures.index)].append(figures)
        off_ok, on_ok = (sum(f.ok for f in sides[k]) for k in (False, True))
        if not off_ok or not on_ok:
            continue
        result.rounds.append(
            (
                sum(f.cpu_seconds for f in sides[False]) / off_ok * 1000.0,
                sum(f.cpu_seconds for f in sides[True]) / on_ok * 1000.0,
                off_ok / args.duration,
                on_ok / args.duration,
            )
        )
    return result


@dataclass
class InterleavedComparison:
    """Rounds in which every worker switches the thing on and off at the same instants."""

    label: str
    slot: float
    rounds: list[InterleavedFigures]

    @property
    def round_costs(self) -> list[float]:
        return [cost for r in self.rounds if (cost := r.cost) is not None]

    @property
    def cost(self) -> float | None:
        """The median over the rounds of 1 - (throughput on / throughput off)."""
        return _median(self.round_costs)


def interleave_compare(
    args: argparse.Namespace,
    bank: SeededBank,
    *,
    label: str,
    seed: int,
    switch: Callable[[bool], None] | None = None,
    controller: Callable[[bool], None] | None = None,
) -> InterleavedComparison:
    """``args.interleave_rounds`` phases of ``run_interleaved_phase``, the on slots swapped
    every round; a ``controller`` (a switch in the database) gets ``args.interleave_guard``."""
    top = args.worker_counts[-1]
    result = InterleavedComparison(label=label, slot=args.interleave_slot, rounds=[])
    for round_no in range(args.interleave_rounds):
        close_db_connections()
        log(
            f"service c{top} interleaved {label}: every {args.interleave_slot:g} s on, then off"
            f" (round {round_no + 1}/{args.interleave_rounds})"
        )
        result.rounds.append(
            run_interleaved_phase(
                workers=top,
                factory=service_factory(bank, hot=False, seed=seed + round_no),
                warmup=args.warmup,
                duration=args.duration,
                slot=args.interleave_slot,
                switch=switch,
                controller=controller,
                guard=args.interleave_guard if controller is not None else 0.0,
                flip=round_no % 2 == 1,
            )
        )
    return result


def _interleaved_line(inter: InterleavedComparison, top: int) -> str:
    lag = max((r.switch_lag for r in inter.rounds), default=0.0)
    return (
        f"service c{top} interleaved (every worker with {inter.label} for {inter.slot:g} s,"
        f" then without): cost {fmt_number(inter.cost * 100 if inter.cost is not None else None)}"
        " % (median of the rounds: "
        + ", ".join(f"{c * 100:.1f}" for c in inter.round_costs)
        + ")"
        + _middle_half(inter.round_costs)
        + "\n  rounds, tps without/with: "
        + ", ".join(
            f"{r.ok_off / r.seconds_per_side:.0f}/{r.ok_on / r.seconds_per_side:.0f}"
            for r in inter.rounds
        )
        + f"; failed: {sum(r.failed for r in inter.rounds)}"
        + (f"; slowest switch {lag * 1000:.0f} ms after its slot began" if lag else "")
    )


def _comparison_rows(comparison: Comparison, ref: float | None) -> list[list[object]]:
    rows: list[list[object]] = []
    for side, phases, tps in (
        ("without", comparison.without, comparison.tps_without),
        ("with", comparison.with_, comparison.tps_with),
    ):
        if not phases:
            continue
        rows.append(
            [
                f"service {side} {comparison.label} (median of {len(phases)})",
                phases[0].workers,
                "n/a" if tps is None else round(tps, 1),
                f"{statistics.median(p.p(50) for p in phases):.2f}",
                f"{statistics.median(p.p(99) for p in phases):.2f}",
                fmt_ratio(tps, ref),
                "; ".join(e for p in phases if (e := p.errors_text()) != "-") or "-",
            ]
        )
    return rows


def _comparison_cpu_rows(comparison: Comparison) -> list[list[object]]:
    """Each side's CPU per transfer: the median over its rounds, per process role."""
    rows: list[list[object]] = []
    for side, phases in (("without", comparison.without), ("with", comparison.with_)):
        measured = [p for p in phases if p.cpu is not None and not p.skipped]
        if not measured:
            continue
        client = [v for p in measured if (v := p.cpu_ms_per_op("client")) is not None]
        postgres = [v for p in measured if (v := p.cpu_ms_per_op("postgres")) is not None]
        c = statistics.median(client) if client else None
        pg = statistics.median(postgres) if postgres else None
        rows.append(
            [
                f"service {side} {comparison.label}",
                measured[0].workers,
                fmt_number(c, 2),
                "n/a",
                fmt_number(pg, 2),
                f"{(c or 0) + (pg or 0):.2f}",
                f"{statistics.median(p.cpu.machine_busy for p in measured if p.cpu) * 100:.0f}%",
            ]
        )
    return rows


# --- the run ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", default="banksim_bench", help="throwaway database for the bank")
    p.add_argument("--pgbench-db", default="banksim_pgbench", help="throwaway pgbench database")
    p.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument(
        "--workers",
        default="1,4,8",
        help="service-layer worker counts, comma separated; the largest is reported",
    )
    p.add_argument("--clients", type=int, default=8, help="HTTP, hot and pgbench concurrency")
    p.add_argument("--gunicorn-workers", type=int, default=4)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per phase")
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of each side (without, with) of the outbox/audit and fees/limits phases",
    )
    p.add_argument(
        "--split-rounds",
        type=int,
        default=4,
        help="phases with half the workers writing the outbox event and audit row, half not "
        "(a low-noise CPU comparison; 0 to skip)",
    )
    p.add_argument(
        "--interleave-rounds",
        type=int,
        default=6,
        help="phases in which every worker writes the outbox event and audit row in one slot"
        " and not in the next (the SUMMARY; 0 to skip)",
    )
    p.add_argument(
        "--interleave-slot",
        type=float,
        default=0.5,
        help="seconds per slot of the interleaved phases",
    )
    p.add_argument(
        "--interleave-guard",
        type=float,
        default=0.15,
        help="seconds at the start of each slot not counted when the switch is a change in"
        " the database (fees+limits), which takes a while to commit",
    )
    p.add_argument("--pgbench-scale", type=int, default=10)
    p.add_argument("--pgbench-seconds", type=int, default=10)
    p.add_argument("--skip-pgbench", action="store_true")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--skip-hot", action="store_true")
    p.add_argument(
        "--skip-outbox-audit",
        action="store_true",
        help="skip service c8 without/with the outbox event and audit decision rows",
    )
    p.add_argument(
        "--skip-fees-limits",
        action="store_true",
        help="skip service c8 without/with one fee rule and one limit rule",
    )
    p.add_argument(
        "--skip-sql-ceiling",
        action="store_true",
        help="skip the diagnostic run of ledger_post alone through pgbench",
    )
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    args.worker_counts = parse_worker_counts(args.workers)
    if args.accounts < 3 or not args.worker_counts or min(args.worker_counts) < 1:
        p.error("need at least 3 accounts and worker counts >= 1")
    if args.rounds < 1:
        p.error("need at least 1 round")
    if args.interleave_rounds < 0 or not 0 <= args.interleave_guard < args.interleave_slot:
        p.error("need --interleave-rounds >= 0 and 0 <= --interleave-guard < --interleave-slot")
    return args


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    c = args.clients
    top = args.worker_counts[-1]

    pgbench: PgbenchResult | None = None
    if not args.skip_pgbench:
        log(
            f"pgbench: init -s {args.pgbench_scale}, then -c {c} -j {min(2, c)}"
            f" -T {args.pgbench_seconds} -M prepared"
        )
        pgbench = pgbench_run(
            db_name=args.pgbench_db,
            scale=args.pgbench_scale,
            clients=c,
            threads=min(2, c),
            seconds=args.pgbench_seconds,
        )
        log(f"  tps {pgbench.tps:.1f}, latency {fmt_number(pgbench.latency_ms, 2)} ms")

    log(f"bank: create {args.db}, migrate, seed {args.accounts:,} funded accounts")
    database_recreate(args.db)
    try:
        t0 = time.monotonic()
        django_setup(args.db)
        django_migrate()
        t1 = time.monotonic()
        bank = seed_bank(
            accounts=args.accounts,
            funding_minor=10_000_00,
            hot_funding_minor=100_000_000_00,
        )
        log(f"  migrate {t1 - t0:.1f}s, seed {time.monotonic() - t1:.1f}s")
        close_db_connections()

        phases: list[PhaseResult] = []
        service: dict[int, PhaseResult] = {}
        for workers in args.worker_counts:
            log(f"service: {workers} worker(s), {args.warmup:g}s warm-up + {args.duration:g}s")
            phase = run_phase(
                name="service",
                workers=workers,
                factory=service_factory(bank, hot=False, seed=args.seed),
                warmup=args.warmup,
                duration=args.duration,
                cpu_groups=service_cpu_groups(args.db),
                housekeeping=office_fold,
            )
            service[workers] = phase
            phases.append(phase)

        http: PhaseResult | None = None
        if not args.skip_http:
            log(f"http: gunicorn -w {args.gunicorn_workers}, {c} client processes")
            http = http_phase(args, bank)
            phases.append(http)

        hot: PhaseResult | None = None
        if not args.skip_hot:
            log(f"hot: every transfer debits {bank.hot_account_number}, {c} workers")
            hot = run_phase(
                name="hot",
                workers=c,
                factory=service_factory(bank, hot=True, seed=args.seed + 1),
                warmup=args.warmup,
                duration=args.duration,
                cpu_groups=service_cpu_groups(args.db),
                housekeeping=office_fold,
            )
            phases.append(hot)

        outbox_audit: Comparison | None = None
        outbox_audit_split: SplitComparison | None = None
        outbox_audit_interleaved: InterleavedComparison | None = None
        if not args.skip_outbox_audit:
            try:
                outbox_audit = compare(
                    args,
                    bank,
                    label="outbox+audit",
                    switch=outbox_audit_switch,
                    seed=args.seed + 200,
                )
                if args.interleave_rounds > 0:
                    outbox_audit_interleaved = interleave_compare(
                        args,
                        bank,
                        label="outbox+audit",
                        seed=args.seed + 150,
                        switch=outbox_audit_switch,
                    )
                if args.split_rounds > 0 and top < 2:
                    log("split outbox+audit: skipped, it needs at least two workers")
                elif args.split_rounds > 0:
                    outbox_audit_split = split_compare(
                        args,
                        bank,
                        label="outbox+audit",
                        switch=outbox_audit_switch,
                        seed=args.seed + 250,
                    )
            finally:
                outbox_audit_switch(True)

        fees_limits: Comparison | None = None
        fees_limits_interleaved: InterleavedComparison | None = None
        if not args.skip_fees_limits:
            log(f"fees/limits: a flat {FEE} {CURRENCY} transfer fee, a {LIMIT} daily limit")
            rules = rules_create(bank)
            fees_limits = compare(
                args,
                bank,
                label="fees+limits",
                switch=lambda on: rules_switch(rules, on=on),
                seed=args.seed + 300,
            )
            if args.interleave_rounds > 0:
                fees_limits_interleaved = interleave_compare(
                    args,
                    bank,
                    label="fees+limits",
                    seed=args.seed + 350,
                    controller=lambda on: rules_switch(rules, on=on),
                )

        ceiling: PgbenchResult | None = None
        if not args.skip_sql_ceiling:
            log(f"sql ceiling: ledger_post alone via pgbench, {c} clients")
            ceiling = sql_ceiling(args, bank)

        from ledger.selectors import ledger_violations

        violations = ledger_violations()
        close_db_connections()
    finally:
        if not args.keep:
            database_drop(args.db)

    ref = pgbench.tps if pgbench else None
    rows: list[list[object]] = []
    if pgbench:
        rows.append(["pgbench tpcb-like", c, round(pgbench.tps, 1), "", "", "1.000", "-"])
    for phase in phases:
        tps = None if phase.skipped else phase.tps
        rows.append(
            [
                f"{phase.name} transfers",
                phase.workers,
                "n/a" if tps is None else round(tps, 1),
                "n/a" if tps is None else f"{phase.p(50):.2f}",
                "n/a" if tps is None else f"{phase.p(99):.2f}",
                fmt_ratio(tps, ref),
                phase.errors_text(),
            ]
        )
    for comparison in (outbox_audit, fees_limits):
        if comparison is not None:
            rows.extend(_comparison_rows(comparison, ref))
    if ceiling:
        rows.append(
            [
                "sql ceiling: ledger_post only",
                c,
                round(ceiling.tps, 1),
                f"avg {fmt_number(ceiling.latency_ms, 2)}",
                "",
                fmt_ratio(ceiling.tps, ref),
                _pgbench_failures(ceiling.output),
            ]
        )
    log("")
    log(format_table(["phase", "conc", "tps", "p50 ms", "p99 ms", "vs pgbench", "errors"], rows))
    log("")
    log(
        "CPU per transfer during the measured window (ms; this machine has "
        f"{os.cpu_count()} cores, busy = whole machine incl. other load):"
    )
    cpu_rows: list[list[object]] = []
    if pgbench and pgbench.postgres_cpu_ms is not None:
        cpu_rows.append(_pgbench_cpu_row("pgbench tpcb-like", pgbench))
    for phase in phases:
        if phase.cpu is None or phase.skipped:
            continue
        parts = {r: phase.cpu_ms_per_op(r) for r in ("client", "gunicorn", "postgres")}
        total = sum(v for v in parts.values() if v is not None)
        cpu_rows.append(
            [
                f"{phase.name} transfers",
                phase.workers,
                fmt_number(parts["client"], 2),
                fmt_number(parts["gunicorn"], 2),
                fmt_number(parts["postgres"], 2),
                f"{total:.2f}",
                f"{phase.cpu.machine_busy * 100:.0f}%",
            ]
        )
    for comparison in (outbox_audit, fees_limits):
        if comparison is not None:
            cpu_rows.extend(_comparison_cpu_rows(comparison))
    if ceiling and ceiling.postgres_cpu_ms is not None:
        cpu_rows.append(_pgbench_cpu_row("sql ceiling: ledger_post only", ceiling))
    log(
        format_table(
            ["phase", "conc", "client", "gunicorn", "postgres", "sum", "machine busy"], cpu_rows
        )
    )
    log("")
    if violations:
        log(f"ledger_violations(): {len(violations)} FAILED")
        for v in violations:
            log(f"  {v.check}: {v.detail}")
    else:
        log("ledger_violations(): [] (ledger_verify passed)")
    log(f"total wall time {time.monotonic() - started:.0f}s")

    def tps_of(phase: PhaseResult | None) -> float | None:
        return None if phase is None or phase.skipped else phase.tps

    for comparison, what in (
        (outbox_audit, "the outbox event and audit decision row"),
        (fees_limits, "one fee rule and one limit rule"),
    ):
        if comparison is not None:
            log(
                f"service c{top}: {fmt_number(comparison.tps_without)} tps without {what},"
                f" {fmt_number(comparison.tps_with)} with; cost"
                f" {fmt_number(comparison.cost * 100 if comparison.cost is not None else None)} %"
                " (median of the rounds: "
                + ", ".join(f"{c * 100:.1f}" for c in comparison.round_costs)
                + ")"
                + _middle_half(comparison.round_costs)
            )
            # Each round's two figures: a drift of the machine shows here as a run of rounds
            # whose both sides moved together, which the cost alone would hide.
            log(
                "  rounds, tps without/with: "
                + ", ".join(
                    f"{off.tps:.0f}/{on.tps:.0f}"
                    for off, on in zip(comparison.without, comparison.with_, strict=False)
                )
            )
    for inter in (outbox_audit_interleaved, fees_limits_interleaved):
        if inter is not None:
            log(_interleaved_line(inter, top))
    if outbox_audit_split is not None and (ratio := outbox_audit_split.cpu_ratio) is not None:
        # A diagnostic beside the SUMMARY: what the rows cost each posting's own processes,
        # without the work they cause for everyone (contention, WAL writer, checkpointer).
        log(
            f"service c{top} split (half the workers with {outbox_audit_split.label}): CPU per"
            f" transfer {(ratio - 1) * 100:+.1f} % (median of the rounds: "
            + ", ".join(f"{(r - 1) * 100:+.1f}" for r in outbox_audit_split.cpu_ratios)
            + f"); at saturation that is a throughput cost of {(1 - 1 / ratio) * 100:.1f} %"
        )
        log(
            "  rounds, CPU ms per transfer without/with: "
            + ", ".join(f"{off:.2f}/{on:.2f}" for off, on, _, _ in outbox_audit_split.rounds)
            + "; tps without/with: "
            + ", ".join(f"{a:.0f}/{b:.0f}" for _, _, a, b in outbox_audit_split.rounds)
        )

    service_tps = tps_of(service[top])
    # The interleaved rounds' figure where they ran, else the phases'.
    log(f"SUMMARY outbox_audit_cost={fmt_cost(outbox_audit_interleaved or outbox_audit)}")
    http_tps = tps_of(http)
    hot_tps = tps_of(hot)
    log(
        f"RESULT service_c{top}_tps={fmt_number(service_tps)}"
        f" http_c{c}_tps={fmt_number(http_tps)}"
        f" hot_c{c}_tps={fmt_number(hot_tps)}"
        f" pgbench_tpcb_c{c}_tps={fmt_number(ref)}"
        f" ratio_service={fmt_ratio(service_tps, ref)}"
        f" ratio_http={fmt_ratio(http_tps, ref)}"
        f" ratio_hot={fmt_ratio(hot_tps, ref)}"
        f" fees_limits_cost={fmt_cost(fees_limits_interleaved or fees_limits)}"
    )
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
