"""The day simulator: a seeded bank, D business days of synthetic activity, EOD between days.

Design overview: ``simulate`` seeds the bank's static data (``accounts.seeding``), opens N
verified customers with a mix of savings and current accounts (mostly USD, a few JPY and
KWD) funded by teller cash deposits through the ledger, and creates standing instructions.
Then, for each business day, it makes deposits, withdrawals, transfers and a few requests
that must be refused, through the same services the API calls (``movement_execute``,
``si_create``), runs the end of day, and prints one summary line. It ends with the integrity
checks: ledger invariants, a zero trial balance per currency, the audit chain and the
standing-instruction exactly-once rule.

Everything that decides an outcome comes from ``random.Random(seed)`` and the bank's business
date; the wall clock is read only to report how long things took. Two runs with the same seed
on the same starting state (e.g. a fresh database) print the same numbers. Refusals are
counted by error code: here the domain errors are the expected answers of a client's bad
requests, not failures of the simulator.
"""

from __future__ import annotations

import importlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import connection, transaction

from accounts import services as account_services
from accounts.models import Account, Calendar, Customer, StaffProfile
from accounts.seeding import StaticSeedResult, bank_seed_static
from banksim.api.permissions import SUPERVISOR, TELLER
from banksim.core.errors import DomainError
from banksim.core.money import Money
from fees.models import FeeRule
from fees.services import fee_rule_create
from fees.specs import FeeRuleSpec
from instructions.models import StandingInstruction
from instructions.selectors import si_run_outcomes
from instructions.services import si_create, si_run_due
from ledger.models import Journal
from ledger.selectors import ledger_violations, trial_balance
from ledger.services import Movement, movement_execute, movement_post
from limits.models import LimitRule
from limits.services import LimitRuleSpec, limit_rule_create

DEFAULT_START = date(2026, 11, 30)
CALENDAR = "MAIN"
SETUP_BATCH = 100
LIMIT_RULE_NAME = "Simulator: savings cash withdrawals per day"
FEE_RULE_NAME = "Simulator: transfer fee"
TELLER_CHANNEL = Journal.Channel.TELLER
# Customer transfers come in through the API (online banking), cash over the counter.
API_CHANNEL = Journal.Channel.API

# Per currency: (smallest, largest) amount a customer moves, in minor units.
_DEPOSIT = {"USD": (2_000, 80_000), "JPY": (3_000, 120_000), "KWD": (5_000, 250_000)}
_OPENING = {"USD": (50_000, 500_000), "JPY": (50_000, 800_000), "KWD": (100_000, 1_500_000)}


@dataclass
class DaySummary:
    business_date: date
    postings: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    fees: dict[str, Money] = field(default_factory=dict)
    si: dict[str, int] = field(default_factory=dict)
    eod_seconds: float = 0.0

    def numbers(self) -> tuple[Any, ...]:
        """Everything the seed decides (not the timings): what determinism compares."""
        return (
            self.business_date,
            self.postings,
            tuple(sorted(self.refusals.items())),
            tuple(sorted((c, m.to_wire()) for c, m in self.fees.items())),
            tuple(sorted(self.si.items())),
        )


@dataclass
class SimulationResult:
    customers: int
    accounts: int
    instructions: int
    days: list[DaySummary]
    setup_seconds: float
    total_seconds: float
    failed_checks: list[str]

    @property
    def ok(self) -> bool:
        return not self.failed_checks


@dataclass(frozen=True, slots=True)
class _Acct:
    pk: int
    currency: str
    sol_code: str
    customer: int  # index of the simulated customer


class _Clock:
    """Synthetic timestamps on the business date: outcomes never depend on the wall clock."""

    def __init__(self) -> None:
        self.tick = 0

    def at(self, business_date: date, hour: int = 9) -> datetime:
        self.tick += 1
        return datetime.combine(business_date, clock_time(hour), tzinfo=UTC) + timedelta(
            milliseconds=self.tick
        )


def _staff(static: StaticSeedResult) -> tuple[AbstractBaseUser, AbstractBaseUser]:
    users = []
    for username, role in (("sim_teller", TELLER), ("sim_supervisor", SUPERVISOR)):
        user, _ = get_user_model().objects.get_or_create(username=username)
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
        StaffProfile.objects.get_or_create(
            user=user, defaults={"branch": next(iter(static.branches.values()))}
        )
        users.append(user)
    return users[0], users[1]


def _rules(static: StaticSeedResult, business_date: date, now: datetime) -> None:
    """A transfer fee and a daily cash-withdrawal limit on savings, unless already there."""
    if not FeeRule.objects.filter(event="transfer_out", currency="USD").exists():
        sol = sorted(static.branches)[0]
        fee_rule_create(
            spec=FeeRuleSpec(
                name=FEE_RULE_NAME,
                event="transfer_out",
                currency="USD",
                calc_type="flat",
                flat_fee=Money.parse("0.50", "USD"),
                income_account_id=static.office_account(
                    sol_code=sol, role=Account.OfficeRole.FEE_INCOME, currency="USD"
                ).pk,
                effective_from=business_date,
            ),
            actor=None,
        )
    if not LimitRule.objects.filter(name=LIMIT_RULE_NAME).exists():
        limit_rule_create(
            spec=LimitRuleSpec(
                name=LIMIT_RULE_NAME,
                currency="USD",
                max_amount=Money.parse("1000.00", "USD"),
                txn_type=Journal.TxnType.CASH_WITHDRAWAL,
                product_id=static.products["SBA-USD"].pk,
            ),
            actor=None,
            now=now,
        )


def _products(rng: random.Random) -> list[str]:
    """A customer's accounts: everyone saves in USD, some have a current account, a few
    hold JPY or KWD."""
    products = ["SBA-USD"]
    if rng.random() < 0.35:
        products.append("CAA-USD")
    roll = rng.random()
    if roll < 0.03:
        products.append("SBA-JPY")
    elif roll < 0.05:
        products.append("SBA-KWD")
    return products


def _open_customers(
    *,
    rng: random.Random,
    count: int,
    static: StaticSeedResult,
    teller: AbstractBaseUser,
    supervisor: AbstractBaseUser,
    business_date: date,
    clock: _Clock,
) -> list[_Acct]:
    """Open and fund ``count`` customers, a batch per transaction (fewer commits, same rows)."""
    first = ["Ada", "Ben", "Chloe", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivan", "Jin", "Kofi"]
    last = ["Okafor", "Smith", "Tanaka", "Haddad", "Garcia", "Novak", "Mensah", "Ito", "Khan"]
    sols = sorted(static.branches)
    # Unique in a database that already has simulated customers; never decides an outcome.
    base = Customer.objects.filter(national_id_type=Customer.IdType.TAX_ID).count()
    accounts: list[_Acct] = []
    for start in range(0, count, SETUP_BATCH):
        with transaction.atomic(durable=True):
            for index in range(start, min(start + SETUP_BATCH, count)):
                sol = rng.choice(sols)
                branch = static.branches[sol]
                now = clock.at(business_date, 8)
                customer = account_services.customer_create(
                    data=account_services.CustomerData(
                        customer_type=Customer.CustomerType.INDIVIDUAL,
                        first_name=rng.choice(first),
                        last_name=rng.choice(last),
                        birth_date=date(1950 + rng.randrange(55), 1 + rng.randrange(12), 1),
                        national_id_type=Customer.IdType.TAX_ID,
                        national_id=f"SIM{base + index:09d}",
                        home_branch_id=branch.pk,
                    ),
                    actor=teller,
                    now=now,
                )
                account_services.customer_kyc_set(
                    customer_id=customer.pk,
                    status=Customer.KycStatus.VERIFIED,
                    actor=supervisor,
                    business_date=business_date,
                    reason="simulator: documents verified",
                )
                for product_code in _products(rng):
                    account = account_services.account_open(
                        customer_id=customer.pk,
                        product_code=product_code,
                        branch_id=branch.pk,
                        actor=teller,
                        business_date=business_date,
                        now=now,
                    )
                    low, high = _OPENING[account.currency]
                    movement_post(
                        movement=Movement(
                            txn_type=Journal.TxnType.CASH_DEPOSIT,
                            debit_account_id=static.office_account(
                                sol_code=sol,
                                role=Account.OfficeRole.TELLER_CASH,
                                currency=account.currency,
                            ).pk,
                            credit_account_id=account.pk,
                            amount=Money.from_minor(rng.randint(low, high), account.currency),
                            channel=Journal.Channel.TELLER,
                            narration="Simulator opening deposit",
                        ),
                        actor=teller,
                        business_date=business_date,
                        now=now,
                    )
                    accounts.append(_Acct(account.pk, account.currency, sol, index))
    return accounts


def _new_instruction(
    *,
    rng: random.Random,
    usd: list[_Acct],
    teller: AbstractBaseUser,
    business_date: date,
    now: datetime,
    bad: bool = False,
) -> StandingInstruction:
    payer, payee = rng.sample(usd, 2)
    return si_create(
        debit_account_id=payer.pk,
        credit_account_id=payee.pk,
        amount=Money.from_minor(rng.randint(500, 40_000), "USD"),
        frequency=rng.choice(["daily", "weekly", "weekly", "monthly", "monthly", "monthly"]),
        # A bad request asks for a first occurrence in the past, which must be refused.
        next_date=business_date + timedelta(days=-1 if bad else rng.randrange(0, 8)),
        end_date=None
        if rng.random() < 0.7
        else business_date + timedelta(days=rng.randint(10, 60)),
        max_retries=rng.randint(0, 3),
        carry_forward=rng.random() < 0.6,
        narration="Simulator standing order",
        actor=teller,
        business_date=business_date,
        now=now,
    )


def _activity(
    *,
    rng: random.Random,
    accounts: list[_Acct],
    usd: list[_Acct],
    static: StaticSeedResult,
    teller: AbstractBaseUser,
    business_date: date,
    clock: _Clock,
    day: DaySummary,
    operations: int,
) -> None:
    """One business day of counter and transfer traffic, each request its own transaction."""

    def till(account: _Acct) -> int:
        return static.office_account(
            sol_code=account.sol_code,
            role=Account.OfficeRole.TELLER_CASH,
            currency=account.currency,
        ).pk

    for _ in range(operations):
        now = clock.at(business_date)
        roll = rng.random()
        account = rng.choice(accounts)
        low, high = _DEPOSIT[account.currency]
        amount = Money.from_minor(rng.randint(low, high), account.currency)
        if roll < 0.34:
            movement = Movement(
                Journal.TxnType.CASH_DEPOSIT, till(account), account.pk, amount, TELLER_CHANNEL
            )
        elif roll < 0.62:
            movement = Movement(
                Journal.TxnType.CASH_WITHDRAWAL, account.pk, till(account), amount, TELLER_CHANNEL
            )
        elif roll < 0.95:
            payer, payee = rng.sample(usd, 2)
            amount = Money.from_minor(rng.randint(100, 30_000), "USD")
            movement = Movement(Journal.TxnType.TRANSFER, payer.pk, payee.pk, amount, API_CHANNEL)
        else:
            # Requests a careful client would not send; each must be refused with its code.
            kind = rng.randrange(4)
            if kind == 3:
                try:
                    _new_instruction(
                        rng=rng,
                        usd=usd,
                        teller=teller,
                        business_date=business_date,
                        now=now,
                        bad=True,
                    )
                except DomainError as exc:
                    day.refusals[exc.code] += 1
                continue
            if kind == 0:  # to itself
                movement = Movement(
                    Journal.TxnType.TRANSFER, account.pk, account.pk, amount, API_CHANNEL
                )
            elif kind == 1:  # in a currency the account does not hold
                other = "JPY" if account.currency != "JPY" else "USD"
                movement = Movement(
                    Journal.TxnType.CASH_DEPOSIT,
                    till(account),
                    account.pk,
                    Money.from_minor(amount.minor, other),
                    TELLER_CHANNEL,
                )
            else:  # far more cash than anyone holds
                movement = Movement(
                    Journal.TxnType.CASH_WITHDRAWAL,
                    account.pk,
                    till(account),
                    Money.from_minor(10**11, account.currency),
                    TELLER_CHANNEL,
                )
        try:
            result = movement_execute(
                movement=movement, actor=teller, business_date=business_date, now=now
            )
        except DomainError as exc:
            day.refusals[exc.code] += 1
            continue
        day.postings += int(result.posted)
    # Now and then a customer sets up a new standing order at the counter.
    for _ in range(max(1, len(usd) // 400)):
        _new_instruction(
            rng=rng,
            usd=usd,
            teller=teller,
            business_date=business_date,
            now=clock.at(business_date),
        )


def _fees_charged(business_date: date) -> dict[str, Money]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT currency, SUM(amount_minor) FROM ledger_entry"
            " WHERE business_date = %s AND purpose = 'fee' AND side = 'D'"
            " GROUP BY currency ORDER BY currency",
            [business_date],
        )
        return {cur: Money.from_minor(int(total), cur) for cur, total in cursor.fetchall()}


def _eod_runner() -> Callable[..., Any] | None:
    """``eod.services.eod_run`` if the EOD app provides it, else None."""
    try:
        module = importlib.import_module("eod.services")
    except ModuleNotFoundError:
        return None
    return getattr(module, "eod_run", None)


def _next_business_date(after: date) -> date:
    calendar = Calendar.objects.get(code=CALENDAR)
    weekend = {int(d) for d in calendar.weekend_days.split(",") if d.strip()}
    holidays = set(calendar.holidays.filter(date__gt=after).values_list("date", flat=True))
    day = after + timedelta(days=1)
    while day.isoweekday() in weekend or day in holidays:
        day += timedelta(days=1)
    return day


def _end_of_day(*, business_date: date, clock: _Clock) -> date:
    """Close ``business_date``; return the next business date.

    :raises SimulationFailed: if the day cannot be closed
    """
    now = clock.at(business_date, 20)
    eod_run = _eod_runner()
    if eod_run is not None:
        run = eod_run(calendar_code=CALENDAR, now=now)
        if run.status != "done":
            raise SimulationFailed(f"EOD {business_date} {run.status}: {run.error}")
        return Calendar.objects.get(code=CALENDAR).business_date
    # Without the EOD app: the standing-instruction step and the ledger gate, and the day is
    # advanced in the simulator's own reckoning (every service takes the date as a parameter).
    si_run_due(business_date=business_date, now=now, progress=lambda done, total: None)
    violations = ledger_violations()
    if violations:
        raise SimulationFailed(f"EOD {business_date}: {violations[0].detail}")
    return _next_business_date(business_date)


class SimulationFailed(Exception):
    """The simulated bank could not close a day."""


def _integrity_checks() -> list[str]:
    failed = [f"ledger: {v.check}: {v.detail}" for v in ledger_violations()]
    for tb in trial_balance():
        if tb.net.minor != 0:
            failed.append(f"trial balance {tb.currency} nets to {tb.net}, not zero")
    try:
        audit = importlib.import_module("audit.services")
    except ModuleNotFoundError:  # pragma: no cover - audit is installed in every setting
        audit = None
    if audit is not None and hasattr(audit, "audit_chain_violations"):
        failed.extend(f"audit chain: {v}" for v in audit.audit_chain_violations())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT instruction_id, due_date FROM instructions_standinginstructionrun"
            " WHERE outcome IN ('posted', 'entered')"
            " GROUP BY instruction_id, due_date HAVING count(*) > 1 LIMIT 5"
        )
        failed.extend(f"standing instruction posted twice: {row}" for row in cursor.fetchall())
    return failed


def format_day(day: DaySummary) -> str:
    refusals = " ".join(f"{code}={n}" for code, n in sorted(day.refusals.items())) or "-"
    fees = " ".join(f"{m.currency} {m.amount}" for m in day.fees.values()) or "-"
    return (
        f"{day.business_date}  {day.postings:>8}  {day.si.get('posted', 0):>6}"
        f"  {day.si.get('retry', 0):>5}  {day.si.get('failed', 0):>6}  {fees:<14}"
        f"  {day.eod_seconds:>6.2f}s  {refusals}"
    )


HEADER = "date        postings  SI ok  SI rt  SI bad  fees            EOD (s)  refusals by code"


def simulate(
    *, customers: int, days: int, seed: int, out: Callable[[str], None]
) -> SimulationResult:
    """Seed a bank of ``customers`` customers and run ``days`` business days with EOD between.

    The caller must not hold a transaction (every request commits on its own).

    :raises SimulationFailed: if a day cannot be closed
    """
    with connection.cursor() as cursor:
        # Synthetic data: a commit need not wait for its WAL flush. The postings still go
        # through the same code and constraints; only a server crash could lose the tail.
        cursor.execute("SET synchronous_commit TO off")
    try:
        return _simulate(customers=customers, days=days, seed=seed, out=out)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _simulate(
    *, customers: int, days: int, seed: int, out: Callable[[str], None]
) -> SimulationResult:
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic traffic, not secrets
    clock = _Clock()
    static = bank_seed_static(business_date=DEFAULT_START, now=clock.at(DEFAULT_START, 7))
    business_date = Calendar.objects.get(code=CALENDAR).business_date
    teller, supervisor = _staff(static)
    _rules(static, business_date, clock.at(business_date, 7))
    accounts = _open_customers(
        rng=rng,
        count=customers,
        static=static,
        teller=teller,
        supervisor=supervisor,
        business_date=business_date,
        clock=clock,
    )
    usd = [a for a in accounts if a.currency == "USD"]
    instructions = max(2, customers // 7)
    for _ in range(instructions):
        _new_instruction(
            rng=rng,
            usd=usd,
            teller=teller,
            business_date=business_date,
            now=clock.at(business_date),
        )
    setup_seconds = time.perf_counter() - started
    out(
        f"seeded {customers} customers, {len(accounts)} accounts, {instructions} standing "
        f"instructions from {business_date} in {setup_seconds:.1f}s"
    )
    out(HEADER)
    summaries: list[DaySummary] = []
    for _ in range(days):
        day = DaySummary(business_date=business_date)
        _activity(
            rng=rng,
            accounts=accounts,
            usd=usd,
            static=static,
            teller=teller,
            business_date=business_date,
            clock=clock,
            day=day,
            operations=max(10, customers * 2 // 5),
        )
        eod_started = time.perf_counter()
        next_date = _end_of_day(business_date=business_date, clock=clock)
        day.eod_seconds = time.perf_counter() - eod_started
        day.si = si_run_outcomes(run_on=business_date)
        day.fees = _fees_charged(business_date)
        day.postings += day.si.get("posted", 0)
        summaries.append(day)
        out(format_day(day))
        business_date = next_date
    failed = _integrity_checks()
    total = time.perf_counter() - started
    for problem in failed:
        out(f"FAILED {problem}")
    out(
        f"{'all integrity checks passed' if not failed else f'{len(failed)} checks failed'}; "
        f"setup {setup_seconds:.1f}s, total {total:.1f}s"
    )
    return SimulationResult(
        customers=customers,
        accounts=len(accounts),
        instructions=instructions,
        days=summaries,
        setup_seconds=setup_seconds,
        total_seconds=total,
        failed_checks=failed,
    )
