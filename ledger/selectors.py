"""Reads of balances, journals, holds, statements and the trial balance.

Balances as of a date and statement running balances of customer accounts come from
``Entry.balance_after_minor`` (the account's ledger balance right after that entry), read in
(business_date, id) order on the ``entry_account_bdate_idx`` index. Office (GL) accounts have
no running balance on their entries (``OfficeBalanceDelta``): their as-of balances are sums
of entries, and their current balance is the balance row plus its unfolded deltas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import (
    BigIntegerField,
    Case,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import Account
from banksim.core.errors import NotFound
from banksim.core.money import Money
from ledger.errors import JournalNotFound
from ledger.models import AccountBalance, Entry, Hold, Journal, OfficeBalanceDelta


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
    row = balances_live().filter(account_id=account_id).first()
    if row is None:
        raise BalanceNotFound(f"no account with id {account_id}")
    cur = row.currency
    ledger = row.live_minor  # type: ignore[attr-defined]
    return BalanceSnapshot(
        account_id=account_id,
        ledger=Money.from_minor(ledger, cur),
        held=Money.from_minor(row.held_minor, cur),
        available=Money.from_minor(ledger - row.held_minor + row.overdraft_limit_minor, cur),
        min_balance=Money.from_minor(row.min_balance_minor, cur),
        overdraft_limit=Money.from_minor(row.overdraft_limit_minor, cur),
    )


def balances_live() -> QuerySet[AccountBalance]:
    """Balance rows annotated with ``live_minor``: the ledger balance with unfolded deltas."""
    return AccountBalance.objects.annotate(live_minor=F("ledger_minor") + _pending_of_row())


def _pending_of_row() -> Case:
    """Per balance row: its unfolded deltas (only office rows have any; others cost nothing)."""
    pending = (
        OfficeBalanceDelta.objects.filter(account_id=OuterRef("account_id"))
        .order_by()
        .values("account_id")
        .annotate(total=Sum("delta_minor"))
        .values("total")
    )
    return Case(
        When(is_office=True, then=Coalesce(Subquery(pending), Value(0))),
        default=Value(0),
        output_field=BigIntegerField(),
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
        """SELECT b.account_id, b.ledger_minor + COALESCE(p.pending, 0), COALESCE(e.net, 0)
             FROM ledger_balance b
             LEFT JOIN (SELECT account_id,
                               SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END)
                               AS net
                          FROM ledger_entry GROUP BY account_id) e
               ON e.account_id = b.account_id
             LEFT JOIN (SELECT account_id, SUM(delta_minor) AS pending
                          FROM ledger_balance_pending GROUP BY account_id) p
               ON p.account_id = b.account_id
            WHERE b.ledger_minor + COALESCE(p.pending, 0) <> COALESCE(e.net, 0)
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


# --- journals ----------------------------------------------------------------------------------

_TXN_ID = re.compile(r"T[0-9]{12}", re.ASCII)


def journal_get(*, txn_id: str) -> Journal:
    """Return the journal (transaction) with this ``txn_id``.

    :raises JournalNotFound: if there is none (or the id has the wrong shape)
    """
    journal = Journal.objects.filter(txn_id=txn_id).first() if _TXN_ID.fullmatch(txn_id) else None
    if journal is None:
        raise JournalNotFound(f"no transaction {txn_id[:24]!r}")
    return journal


@dataclass(frozen=True)
class JournalLine:
    account_number: str
    side: str
    amount: Money
    balance_after: Money | None  # None on office accounts (no running balance per entry)
    purpose: str


@dataclass(frozen=True)
class JournalDetail:
    """A journal as the API shows it: its principal amount, and its entries once posted."""

    journal: Journal
    amount: Money
    entries: list[JournalLine]
    reversal_of: str | None  # txn_id of the journal this one reverses
    reversed_by: str | None  # txn_id of the reversal of this one


def _journals() -> QuerySet[Journal]:
    return Journal.objects.select_related(
        "maker", "checker", "reversal_of", "reversed_by"
    ).prefetch_related(
        Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("id"))
    )


def _detail(journal: Journal) -> JournalDetail:
    entries = list(journal.entries.all())
    if entries:
        currency = entries[0].currency
        legs = [(e.side, e.amount_minor, e.purpose) for e in entries]
    else:  # entered or rejected: what it was asked to post
        currency = journal.details["currency"]
        legs = [
            (leg["side"], leg["amount_minor"], leg["purpose"]) for leg in journal.details["legs"]
        ]
    # The amount of a movement is its principal; fee and tax legs ride along in the entries.
    principal = [minor for side, minor, purpose in legs if side == "D" and purpose == "principal"]
    amount_minor = sum(principal) if principal else sum(m for s, m, _ in legs if s == "D")
    reversed_by = getattr(journal, "reversed_by", None)
    return JournalDetail(
        journal=journal,
        amount=Money.from_minor(amount_minor, currency),
        entries=[
            JournalLine(
                account_number=e.account.account_number,
                side=e.side,
                amount=Money.from_minor(e.amount_minor, e.currency),
                balance_after=(
                    None
                    if e.balance_after_minor is None
                    else Money.from_minor(e.balance_after_minor, e.currency)
                ),
                purpose=e.purpose,
            )
            for e in entries
        ],
        reversal_of=journal.reversal_of.txn_id if journal.reversal_of_id else None,
        reversed_by=reversed_by.txn_id if reversed_by is not None else None,
    )


def journal_detail(*, journal_id: int) -> JournalDetail:
    """Return a journal with its entries and reversal links.

    :raises JournalNotFound: if there is none
    """
    journal = _journals().filter(pk=journal_id).first()
    if journal is None:
        raise JournalNotFound(f"no transaction with id {journal_id}")
    return _detail(journal)


def journal_page(*, status: str = "", limit: int, offset: int) -> tuple[int, list[JournalDetail]]:
    """Return (total, one page) of journals, oldest first, e.g. the approval queue (``entered``)."""
    journals = Journal.objects.all()
    if status:
        journals = journals.filter(status=status)
    total = journals.count()
    page = list(
        _journals()
        .filter(pk__in=journals.order_by("id").values("pk")[offset : offset + limit])
        .order_by("id")
    )
    return total, [_detail(journal) for journal in page]


# --- balances and statements -------------------------------------------------------------------


_SIGNED = Case(
    When(side=Entry.Side.CREDIT, then=F("amount_minor")),
    default=-F("amount_minor"),
    output_field=BigIntegerField(),
)


def _entries_net(account: Account, condition: Q) -> int:
    """Credits minus debits of the account's entries matching ``condition``."""
    total = Entry.objects.filter(condition, account_id=account.pk).aggregate(net=Sum(_SIGNED))
    return int(total["net"] or 0)


def _balance_after(account: Account, condition: Q) -> Money:
    """The balance after the latest entry (by business date, then posting order) matching."""
    if account.kind == Account.Kind.OFFICE:
        return Money.from_minor(_entries_net(account, condition), account.currency)
    minor = (
        Entry.objects.filter(condition, account_id=account.pk)
        .order_by("-business_date", "-id")
        .values_list("balance_after_minor", flat=True)
        .first()
    )
    return Money.from_minor(minor or 0, account.currency)


def balance_as_of(*, account: Account, on: date) -> Money:
    """Return the account's ledger balance at the end of business date ``on``."""
    return _balance_after(account, Q(business_date__lte=on))


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    txn_id: str
    business_date: date
    posted_at: datetime | None  # the journal's posting time
    narration: str
    side: str
    amount: Money
    balance: Money  # running ledger balance after this line
    purpose: str


@dataclass(frozen=True)
class Statement:
    """One page of an account statement over [date_from, date_to].

    ``opening`` and ``closing`` describe the whole range (the same on every page); each line
    carries its own running balance, so a page can be checked on its own.
    """

    opening: Money
    closing: Money
    lines: list[StatementLine]
    next_after: tuple[date, int] | None  # key of the last line when more lines follow


def statement(
    *,
    account: Account,
    date_from: date | None,
    date_to: date | None,
    after: tuple[date, int] | None,
    limit: int,
) -> Statement:
    """Return one keyset-paginated page of the account's entries in (business_date, id) order.

    ``after`` is the (business_date, entry id) of the last line already shown.
    """
    in_range = Q()
    if date_from is not None:
        in_range &= Q(business_date__gte=date_from)
    if date_to is not None:
        in_range &= Q(business_date__lte=date_to)
    page = Entry.objects.filter(in_range, account_id=account.pk)
    if after is not None:
        after_date, after_id = after
        page = page.filter(
            Q(business_date__gt=after_date) | Q(business_date=after_date, id__gt=after_id)
        )
    rows = list(page.select_related("journal").order_by("business_date", "id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    opening = (
        _balance_after(account, Q(business_date__lt=date_from))
        if date_from is not None
        else Money.zero(account.currency)
    )
    closing = _balance_after(account, Q(business_date__lte=date_to) if date_to is not None else Q())
    balances = [e.balance_after_minor for e in rows]
    if rows and account.kind == Account.Kind.OFFICE:
        # No running balance on office entries: the sum before the page, then line by line.
        first = rows[0]
        running = _entries_net(
            account,
            Q(business_date__lt=first.business_date)
            | Q(business_date=first.business_date, id__lt=first.pk),
        )
        balances = []
        for e in rows:
            running += e.amount_minor if e.side == Entry.Side.CREDIT else -e.amount_minor
            balances.append(running)
    return Statement(
        opening=opening,
        closing=closing,
        lines=[
            StatementLine(
                entry_id=e.pk,
                txn_id=e.journal.txn_id,
                business_date=e.business_date,
                posted_at=e.journal.posted_at,
                narration=e.journal.narration,
                side=e.side,
                amount=Money.from_minor(e.amount_minor, e.currency),
                balance=Money.from_minor(balance, e.currency),
                purpose=e.purpose,
            )
            for e, balance in zip(rows, balances, strict=True)
        ],
        next_after=(rows[-1].business_date, rows[-1].pk) if more else None,
    )


# --- holds -------------------------------------------------------------------------------------


def hold_list(*, account: Account, status: str = "") -> QuerySet[Hold]:
    """Return the account's holds, newest first, optionally of one status."""
    holds = Hold.objects.filter(account_id=account.pk).select_related("account", "journal")
    if status:
        holds = holds.filter(status=status)
    return holds.order_by("-id")


# --- trial balance -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialBalanceLine:
    gl_subhead: str
    name: str
    category: str
    debit: Money  # sum of the debit balances booked under this sub-head
    credit: Money  # sum of the credit balances
    net: Money  # credit - debit


@dataclass(frozen=True)
class TrialBalance:
    currency: str
    lines: list[TrialBalanceLine]
    debit: Money
    credit: Money
    net: Money  # zero in a sound ledger


def trial_balance(*, currency: str = "") -> list[TrialBalance]:
    """Return the trial balance per currency and GL sub-head, from the balance rows.

    One GROUP BY over ``ledger_balance``: an account with a negative ledger balance (credits
    minus debits) is a debit balance, a positive one a credit balance. Office rows count
    their unfolded deltas.
    """
    rows = balances_live()
    if currency:
        rows = rows.filter(currency=currency)
    grouped = (
        rows.values(
            "currency",
            # Office accounts book under their own sub-head, customer accounts their product's.
            code=Coalesce("account__gl_subhead__code", "account__product__gl_subhead__code"),
            name=Coalesce("account__gl_subhead__name", "account__product__gl_subhead__name"),
            category=Coalesce(
                "account__gl_subhead__category", "account__product__gl_subhead__category"
            ),
        )
        .annotate(
            debit=Sum(
                Case(
                    When(live_minor__lt=0, then=-F("live_minor")),
                    default=0,
                    output_field=BigIntegerField(),
                )
            ),
            credit=Sum(
                Case(
                    When(live_minor__gt=0, then=F("live_minor")),
                    default=0,
                    output_field=BigIntegerField(),
                )
            ),
        )
        .order_by("currency", "code")
    )
    by_currency: dict[str, list[TrialBalanceLine]] = {}
    for row in grouped:
        cur = row["currency"]
        by_currency.setdefault(cur, []).append(
            TrialBalanceLine(
                gl_subhead=row["code"],
                name=row["name"],
                category=row["category"],
                debit=Money.from_minor(row["debit"], cur),
                credit=Money.from_minor(row["credit"], cur),
                net=Money.from_minor(row["credit"] - row["debit"], cur),
            )
        )
    result = []
    for cur, lines in by_currency.items():
        debit = sum((line.debit for line in lines), Money.zero(cur))
        credit = sum((line.credit for line in lines), Money.zero(cur))
        result.append(
            TrialBalance(currency=cur, lines=lines, debit=debit, credit=credit, net=credit - debit)
        )
    return result
