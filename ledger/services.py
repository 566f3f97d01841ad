"""Writes to the ledger: balance rows, money movements, reversals, holds, maker-checker.

Use cases (``*_execute``, ``journal_reverse``, ``journal_approve``...) own a durable
transaction. Building blocks (``movement_post``, ``journal_reverse_post``,
``journal_approve_post``, ``hold_place_locked``, ``balance_open``, ``balance_lock``) require
their caller's, so another use case (e.g. ``ledger.idempotency.idempotent_execute``) can put
them in its own transaction. All entries are written by ``ledger.posting.journal_post``.

Where fees and limits join: ``movement_post`` builds the principal legs, then (issue #4) the
fee engine adds fee and tax legs to the same list and the limit consumption runs in the same
transaction, so the one journal and the one commit cover all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F

from accounts.models import Account, Calendar
from audit.services import audit_decision_row, audit_object_note, audit_record
from banksim.core.money import Money
from fees.services import fee_assess, fee_usage_release
from ledger.errors import (
    AccountClosed,
    AccountDormant,
    AccountFrozen,
    AccountNotFound,
    AlreadyReversed,
    DayNotOpen,
    HoldNotActive,
    HoldNotFound,
    InsufficientFunds,
    InvalidExpiry,
    JournalNotFound,
    JournalNotPending,
    LedgerCurrencyMismatch,
    NotAnOfficeAccount,
    NotReversible,
    SameAccount,
    SelfApproval,
)
from ledger.models import (
    AccountBalance,
    ApprovalThreshold,
    Entry,
    Hold,
    IdempotencyRecord,
    Journal,
)
from ledger.posting import Leg, journal_post
from limits.services import limit_consume, limit_release, records_limit_breaches
from outbox import events as outbox_events
from outbox.nudge import nudge_on_commit
from outbox.services import outbox_enqueue

TxnType = Journal.TxnType
Channel = Journal.Channel


@dataclass(frozen=True)
class Movement:
    """A request to move money from one account to another.

    ``cash_deposit`` debits the teller's cash GL and credits the customer; ``cash_withdrawal``
    the reverse; ``transfer`` is customer to customer; ``adjustment`` is GL to GL.
    """

    txn_type: str
    debit_account_id: int
    credit_account_id: int
    amount: Money
    channel: str
    narration: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MovementResult:
    journal: Journal
    posted: bool  # False: entered for approval, funds held


# --- balance rows ----------------------------------------------------------------------------


def balance_open(
    *, account: Account, business_date: date, min_balance_minor: int, overdraft_limit_minor: int
) -> AccountBalance:
    """Create the zero balance row of a newly opened account. Caller holds a transaction."""
    assert connection.in_atomic_block, "balance_open must run inside the opening transaction"
    return AccountBalance.objects.create(
        account=account,
        currency=account.currency,
        min_balance_minor=min_balance_minor,
        overdraft_limit_minor=overdraft_limit_minor,
        is_office=account.kind == Account.Kind.OFFICE,
        last_activity_on=business_date,
    )


def balance_lock(*, account_id: int) -> AccountBalance:
    """Take the posting lock of one account (its balance row) until the transaction ends.

    :raises AccountNotFound: if the account has no balance row
    """
    assert connection.in_atomic_block, "balance_lock needs a transaction"
    row = AccountBalance.objects.select_for_update().filter(account_id=account_id).first()
    if row is None:
        raise AccountNotFound(f"no account with id {account_id}")
    return row


# --- movements -------------------------------------------------------------------------------


# Which fee event a movement raises, and on whom: the customer side of the movement pays.
_FEE_EVENTS: dict[str, str] = {
    TxnType.TRANSFER: "transfer_out",
    TxnType.CASH_WITHDRAWAL: "cash_withdrawal",
    TxnType.CASH_DEPOSIT: "cash_deposit",
}


@dataclass(frozen=True, slots=True)
class _AccountFacts:
    pk: int
    account_number: str
    kind: str
    currency: str
    product_id: int


def _default_threshold_minor(currency: str) -> int:
    return Money.parse(settings.MAKER_CHECKER_DEFAULT_THRESHOLD.split(".")[0], currency).minor


# One round trip for both accounts, the approval threshold that applies to the debit side
# (most specific row wins: product+channel, product, channel, currency-wide), the main
# calendar's day state (teller and API postings stop while end of day runs) and the
# movement's txn serial. Drawing the serial here lets the caller build the movement's audit
# row and event before it posts (an uncorrelated subquery runs once, for both rows); a
# movement refused after this leaves a gap, as a refused posting always has.
_FACTS_SQL = """
SELECT a.id, a.account_number, a.kind, a.currency, a.product_id,
       (SELECT t.amount_minor FROM ledger_approvalthreshold t
         WHERE t.currency = a.currency
           AND (t.product_id IS NULL OR t.product_id = a.product_id)
           AND (t.channel = '' OR t.channel = %s)
         ORDER BY (t.product_id IS NOT NULL) DESC, (t.channel <> '') DESC
         LIMIT 1),
       (SELECT c.day_state FROM accounts_calendar c WHERE c.code = 'MAIN'),
       (SELECT nextval('ledger_txn_seq'))
  FROM accounts_account a
 WHERE a.id IN (%s, %s)
"""


def _txn_id_of(serial: int) -> str:
    """The txn_id of a ``ledger_txn_seq`` value, as ``ledger_post`` writes it."""
    return f"T{serial:012d}"


def approval_threshold_minor(*, currency: str, product_id: int | None, channel: str) -> int:
    """Return the amount above which a movement needs a checker (most specific row wins)."""
    row = (
        ApprovalThreshold.objects.filter(currency=currency)
        .filter(models.Q(product_id=None) | models.Q(product_id=product_id))
        .filter(channel__in=("", channel))
        .order_by(
            models.F("product_id").asc(nulls_last=True),
            models.Case(models.When(channel="", then=1), default=0),
        )
        .values_list("amount_minor", flat=True)
        .first()
    )
    return row if row is not None else _default_threshold_minor(currency)


def _check_accounts(movement: Movement) -> tuple[dict[int, _AccountFacts], int, str]:
    """Friendly checks before any lock; return the accounts, the debit side's threshold and
    the txn_id drawn for the movement."""
    if movement.debit_account_id == movement.credit_account_id:
        raise SameAccount(
            "debit and credit account are the same",
            errors={"credit_account": ["must differ from the debit account"]},
        )
    with connection.cursor() as cursor:
        cursor.execute(
            _FACTS_SQL, [movement.channel, movement.debit_account_id, movement.credit_account_id]
        )
        rows = cursor.fetchall()
    if len(rows) != 2:
        raise AccountNotFound("an account in this movement does not exist")
    # Batch postings (EOD steps, standing instructions) are the ones EOD itself makes. No
    # calendar row (a bare test database) means no end of day to wait for.
    if movement.channel != Channel.BATCH and rows[0][6] not in (None, "open"):
        raise DayNotOpen(
            f"the business day is {rows[0][6]}; postings resume when the next day opens"
        )
    accounts = {row[0]: _AccountFacts(*row[:5]) for row in rows}
    for account in accounts.values():
        if account.currency != movement.amount.currency:
            raise LedgerCurrencyMismatch(
                f"account {account.account_number} is in {account.currency}, "
                f"not {movement.amount.currency}",
                errors={"currency": [f"account {account.account_number} is {account.currency}"]},
            )
    if movement.txn_type == TxnType.ADJUSTMENT and any(
        a.kind != Account.Kind.OFFICE for a in accounts.values()
    ):
        raise NotAnOfficeAccount("adjustments move money between office (GL) accounts only")
    threshold = next(row[5] for row in rows if row[0] == movement.debit_account_id)
    if threshold is None:
        threshold = _default_threshold_minor(movement.amount.currency)
    return accounts, threshold, _txn_id_of(rows[0][7])


def _movement_audit_details(
    movement: Movement, debit: _AccountFacts, credit: _AccountFacts
) -> dict[str, Any]:
    return {
        "type": movement.txn_type,
        "channel": movement.channel,
        "amount": movement.amount.to_wire(),
        "currency": movement.amount.currency,
        "debit_account": debit.account_number,
        "credit_account": credit.account_number,
    }


def movement_post(
    *,
    movement: Movement,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
) -> MovementResult:
    """Post a movement with its fees and daily limits, or enter it for approval.

    One journal holds the principal, fee and tax legs; limit usage and free-fee counters move
    in the same transaction, so a rollback undoes all of it. A movement is entered instead of
    posted when it is above the maker-checker threshold or a limit rule routes it to approval.
    Requires the caller's transaction. Lock order: fee and limit counters, then balance rows.

    :raises SameAccount: / :raises AccountNotFound: / :raises LedgerCurrencyMismatch:
    :raises NotAnOfficeAccount: for an adjustment touching a customer account
    :raises DailyLimitExceeded: if the debit would pass a daily limit that refuses
    :raises InsufficientFunds: if amount plus fee and tax exceed available funds
    :raises AccountClosed: / :raises AccountFrozen: / :raises AccountDormant:
    """
    assert connection.in_atomic_block, "movement_post requires the caller's transaction"
    accounts, threshold, txn_id = _check_accounts(movement)
    debit = accounts[movement.debit_account_id]
    credit = accounts[movement.credit_account_id]
    principal = [
        Leg(movement.debit_account_id, "D", movement.amount),
        Leg(movement.credit_account_id, "C", movement.amount),
    ]
    legs = principal
    details: dict[str, Any] = dict(movement.details)

    # Every leg's account number, for the posting's event (the fee engine adds its GLs').
    numbers = {debit.pk: debit.account_number, credit.pk: credit.account_number}

    payer = credit if movement.txn_type == TxnType.CASH_DEPOSIT else debit
    event = _FEE_EVENTS.get(movement.txn_type)
    if event is not None and payer.kind == Account.Kind.CUSTOMER:
        assessment = fee_assess(
            event=event,
            payer_account_id=payer.pk,
            amount=movement.amount,
            channel=movement.channel,
            business_date=business_date,
            count_usage=True,
        )
        if assessment.charges:
            legs = assessment.legs_with(principal, payer.pk)
            details["fees"] = assessment.details()
            numbers.update(assessment.account_numbers())

    limit_routed = False
    if debit.kind == Account.Kind.CUSTOMER:
        decision = limit_consume(
            account_id=debit.pk,
            amount=movement.amount,
            channel=movement.channel,
            txn_type=movement.txn_type,
            business_date=business_date,
        )
        if decision.consumed:
            details["limits"] = decision.consumed
        limit_routed = decision.requires_approval

    over_threshold = movement.channel != Channel.BATCH and movement.amount.minor > threshold
    if over_threshold or limit_routed:
        details["approval_reason"] = "limit" if limit_routed else "threshold"
        journal = _enter(
            movement=movement,
            txn_id=txn_id,
            legs=legs,
            details=details,
            customer_ids={a.pk for a in accounts.values() if a.kind == Account.Kind.CUSTOMER},
            actor=actor,
            business_date=business_date,
            now=now,
        )
        audit_record(
            action="transaction.entered",
            object_type="transaction",
            object_id=journal.txn_id,
            details=_movement_audit_details(movement, debit, credit),
            actor=actor,
        )
        outbox_enqueue(
            event=outbox_events.transaction_entered(
                journal,
                movement,
                debit_account=debit.account_number,
                credit_account=credit.account_number,
                actor=actor,
            )
        )
        if limit_routed:
            outbox_enqueue(
                event=outbox_events.limit_breached(
                    account_number=debit.account_number,
                    account_id=debit.pk,
                    rule_id=decision.breached_rule_id,
                    action="approval_required",
                    txn_type=movement.txn_type,
                    channel=movement.channel,
                    requested=movement.amount,
                    limit_extra={},
                    business_date=business_date,
                    now=now,
                )
            )
        return MovementResult(journal=journal, posted=False)

    maker_id = actor.pk if actor is not None else None
    # Adjustments are the bank's own GL corrections; customer rules do not apply.
    customer_rules = movement.txn_type != TxnType.ADJUSTMENT
    posted = journal_post(
        legs=legs,
        txn_type=movement.txn_type,
        channel=movement.channel,
        business_date=business_date,
        now=now,
        narration=movement.narration,
        maker_id=maker_id,
        details=details,
        check_status=customer_rules,
        check_funds=customer_rules,
        event=outbox_events.movement_posted(
            movement,
            debit_account=debit.account_number,
            credit_account=credit.account_number,
            fees=details.get("fees"),
            actor=actor,
            legs=legs,
            numbers=numbers,
        ),
        # Written by the posting statement itself, with the journal it records.
        audit=audit_decision_row(
            action="transaction.posted",
            object_type="transaction",
            object_id=txn_id,
            details=_movement_audit_details(movement, debit, credit),
            actor=actor,
        ),
        txn_id=txn_id,
    )
    audit_object_note(object_type="transaction", object_id=posted.txn_id)
    # Built from what was just inserted: re-reading the row would cost a round trip.
    journal = Journal(
        pk=posted.journal_id,
        txn_id=posted.txn_id,
        txn_type=movement.txn_type,
        channel=movement.channel,
        status=Journal.Status.POSTED,
        business_date=business_date,
        entered_at=now,
        posted_at=now,
        narration=movement.narration,
        maker_id=maker_id,
        details=details,
    )
    journal._state.adding = False
    journal._state.db = "default"
    return MovementResult(journal=journal, posted=True)


@records_limit_breaches
def movement_execute(
    *,
    movement: Movement,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
) -> MovementResult:
    """Post (or enter) one movement in its own transaction. See ``movement_post``."""
    with transaction.atomic(durable=True):
        return movement_post(movement=movement, actor=actor, business_date=business_date, now=now)


# --- maker-checker ---------------------------------------------------------------------------


def _enter(
    *,
    movement: Movement,
    txn_id: str,
    legs: list[Leg],
    details: dict[str, Any],
    customer_ids: set[int],
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
) -> Journal:
    """Record a movement awaiting approval and hold what it would debit from customers."""
    journal = Journal.objects.create(
        txn_id=txn_id,
        txn_type=movement.txn_type,
        channel=movement.channel,
        status=Journal.Status.ENTERED,
        business_date=business_date,
        entered_at=now,
        narration=movement.narration,
        maker=actor,
        details={
            **details,
            "legs": [
                {
                    "account_id": leg.account_id,
                    "side": leg.side,
                    "amount_minor": leg.amount.minor,
                    "purpose": leg.purpose,
                }
                for leg in legs
            ],
            "currency": movement.amount.currency,
        },
    )
    debits: dict[int, int] = {}
    for leg in legs:
        if leg.side == "D" and leg.account_id in customer_ids:
            debits[leg.account_id] = debits.get(leg.account_id, 0) + leg.amount.minor
    for account_id in sorted(debits):
        hold_place_locked(
            account_id=account_id,
            amount=Money.from_minor(debits[account_id], movement.amount.currency),
            reason=f"awaiting approval of {journal.txn_id}",
            expires_on=None,
            actor=actor,
            business_date=business_date,
            now=now,
            journal=journal,
        )
    return journal


def _release_counters(journal: Journal) -> None:
    """Give back the daily-limit usage and free-fee uses a journal took (before balance locks)."""
    consumed = journal.details.get("limits") or []
    if consumed:
        limit_release(
            consumed=consumed,
            amount_currency=journal.details.get("currency") or _journal_currency(journal),
            business_date_of_original=journal.business_date,
        )
    if journal.details.get("fees"):
        fee_usage_release(fees=journal.details["fees"])


def _journal_currency(journal: Journal) -> str:
    return Entry.objects.filter(journal=journal).values_list("currency", flat=True)[0]


def _locked_journal(journal_id: int) -> Journal:
    journal = Journal.objects.select_for_update().filter(pk=journal_id).first()
    if journal is None:
        raise JournalNotFound(f"no transaction with id {journal_id}")
    return journal


def _refuse_while_eod(channel: str) -> None:
    """Approvals and reversals are postings too: refuse them like ``movement_post`` does while
    end of day runs (one small read; they are rare next to movements)."""
    if channel == Channel.BATCH:
        return
    state = Calendar.objects.filter(code="MAIN").values_list("day_state", flat=True).first()
    if state not in (None, Calendar.DayState.OPEN):
        raise DayNotOpen(f"the business day is {state}; postings resume when the next day opens")


def journal_approve_post(
    *, journal_id: int, actor: AbstractBaseUser, business_date: date, now: datetime
) -> Journal:
    """Post an entered movement as its checker; the hold it placed is consumed.

    Requires the caller's transaction. Approving twice posts once: the second call finds the
    journal no longer entered.

    :raises JournalNotFound: / :raises JournalNotPending: / :raises SelfApproval:
    :raises InsufficientFunds: and the other account rules, checked again at approval
    :raises DayNotOpen: while end of day runs
    """
    assert connection.in_atomic_block, "journal_approve_post requires the caller's transaction"
    _refuse_while_eod(Channel.TELLER)
    journal = _locked_journal(journal_id)
    if journal.status != Journal.Status.ENTERED:
        raise JournalNotPending(f"{journal.txn_id} is {journal.status}")
    if journal.maker_id is not None and journal.maker_id == actor.pk:
        raise SelfApproval("the maker of a transaction cannot approve it")
    currency = journal.details["currency"]
    legs = [
        Leg(
            leg["account_id"],
            leg["side"],
            Money.from_minor(leg["amount_minor"], currency),
            leg["purpose"],
        )
        for leg in journal.details["legs"]
    ]
    if journal.details.get("approval_reason") == "limit":
        debit = next(leg for leg in legs if leg.side == "D" and leg.purpose == "principal")
        decision = limit_consume(
            account_id=debit.account_id,
            amount=debit.amount,
            channel=journal.channel,
            txn_type=journal.txn_type,
            business_date=business_date,
            enforce=False,
        )
        if decision.consumed:
            journal.details = {**journal.details, "limits": decision.consumed}
            journal.save(update_fields=["details"])
    holds = list(
        Hold.objects.filter(journal=journal, status=Hold.Status.ACTIVE).values_list(
            "pk", "account__account_number", "amount_minor"
        )
    )
    hold_ids = [pk for pk, _, _ in holds]
    journal_post(
        legs=legs,
        txn_type=journal.txn_type,
        channel=journal.channel,
        business_date=business_date,
        now=now,
        journal_id=journal.pk,
        checker_id=actor.pk,
        check_status=journal.txn_type != TxnType.ADJUSTMENT,
        check_funds=journal.txn_type != TxnType.ADJUSTMENT,
        consume_hold_ids=hold_ids,
        event=outbox_events.transaction_approved(journal, currency=currency, actor=actor),
    )
    audit_record(
        action="transaction.approved",
        object_type="transaction",
        object_id=journal.txn_id,
        actor=actor,
    )
    for hold_id, account_number, amount_minor in holds:
        outbox_enqueue(
            event=outbox_events.hold_released(
                hold_id=hold_id,
                account_number=account_number,
                amount_minor=amount_minor,
                currency=currency,
                status=Hold.Status.CONSUMED,
                actor=actor,
                now=now,
                txn_id=journal.txn_id,
            )
        )
    journal.refresh_from_db()
    return journal


def journal_approve(
    *, journal_id: int, actor: AbstractBaseUser, business_date: date, now: datetime
) -> Journal:
    """Approve an entered movement in its own transaction. See ``journal_approve_post``."""
    with transaction.atomic(durable=True):
        return journal_approve_post(
            journal_id=journal_id, actor=actor, business_date=business_date, now=now
        )


def journal_reject(
    *, journal_id: int, reason: str, actor: AbstractBaseUser, now: datetime
) -> Journal:
    """Reject an entered movement and release the funds it held.

    :raises JournalNotFound: / :raises JournalNotPending: / :raises SelfApproval:
    """
    with transaction.atomic(durable=True):
        journal = _locked_journal(journal_id)
        if journal.status != Journal.Status.ENTERED:
            raise JournalNotPending(f"{journal.txn_id} is {journal.status}")
        if journal.maker_id is not None and journal.maker_id == actor.pk:
            raise SelfApproval("the maker of a transaction cannot reject it")
        _release_counters(journal)
        for hold in Hold.objects.filter(journal=journal, status=Hold.Status.ACTIVE):
            _hold_release_locked(hold_id=hold.pk, actor=actor, now=now)
        journal.status = Journal.Status.REJECTED
        journal.checker = actor
        journal.details = {**journal.details, "rejection_reason": reason}
        journal.save(update_fields=["status", "checker", "details"])
        outbox_enqueue(
            event=outbox_events.transaction_rejected(journal, reason=reason, actor=actor, now=now)
        )
        audit_record(
            action="transaction.rejected",
            object_type="transaction",
            object_id=journal.txn_id,
            details={"reason": reason},
            actor=actor,
        )
        return journal


# --- reversal --------------------------------------------------------------------------------


def journal_reverse_post(
    *,
    journal_id: int,
    reason: str,
    actor: AbstractBaseUser | None,
    channel: str,
    business_date: date,
    now: datetime,
) -> Journal:
    """Post the mirror image of a posted journal (all its legs, fees included), exactly once.

    Requires the caller's transaction.

    :raises JournalNotFound: / :raises NotReversible: for entered, rejected or reversal
        journals / :raises AlreadyReversed: / :raises InsufficientFunds: if the money is gone
    :raises DayNotOpen: while end of day runs, unless ``channel`` is batch
    """
    assert connection.in_atomic_block, "journal_reverse_post requires the caller's transaction"
    _refuse_while_eod(channel)
    original = _locked_journal(journal_id)
    if original.status != Journal.Status.POSTED or original.txn_type == TxnType.REVERSAL:
        raise NotReversible(f"{original.txn_id} is {original.status} {original.txn_type}")
    if Journal.objects.filter(reversal_of=original).exists():
        raise AlreadyReversed(f"{original.txn_id} has already been reversed")
    # Limits and free-fee uses go back first: their locks come before the balance rows'.
    _release_counters(original)
    legs = [
        Leg(
            e.account_id,
            "C" if e.side == "D" else "D",
            Money.from_minor(e.amount_minor, e.currency),
            e.purpose,
        )
        for e in Entry.objects.filter(journal=original).order_by("id")
    ]
    try:
        with transaction.atomic():
            posted = journal_post(
                legs=legs,
                txn_type=TxnType.REVERSAL,
                channel=channel,
                business_date=business_date,
                now=now,
                narration=f"Reversal of {original.txn_id}: {reason}"[:200],
                maker_id=actor.pk if actor is not None else None,
                reversal_of_id=original.pk,
                details={"reason": reason, "reverses": original.txn_id},
                # A reversal undoes the bank's own posting: freezes and dormancy do not
                # stop it, but it may not overdraw a customer beyond their limits.
                check_status=False,
                check_funds=True,
                event=outbox_events.transaction_reversed(
                    original, currency=legs[0].amount.currency, reason=reason, actor=actor
                ),
            )
    except IntegrityError as exc:  # the unique reversal_of lost a race
        raise AlreadyReversed(f"{original.txn_id} has already been reversed") from exc
    audit_record(
        action="transaction.reversed",
        object_type="transaction",
        object_id=original.txn_id,
        details={"reversal": posted.txn_id, "reason": reason},
        actor=actor,
    )
    return Journal.objects.get(pk=posted.journal_id)


def journal_reverse(
    *,
    journal_id: int,
    reason: str,
    actor: AbstractBaseUser | None,
    channel: str,
    business_date: date,
    now: datetime,
) -> Journal:
    """Reverse a posted journal in its own transaction. See ``journal_reverse_post``."""
    with transaction.atomic(durable=True):
        return journal_reverse_post(
            journal_id=journal_id,
            reason=reason,
            actor=actor,
            channel=channel,
            business_date=business_date,
            now=now,
        )


# --- holds -----------------------------------------------------------------------------------


def hold_place_locked(
    *,
    account_id: int,
    amount: Money,
    reason: str,
    expires_on: date | None,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
    journal: Journal | None = None,
    enforce_customer_rules: bool = True,
) -> Hold:
    """Place a hold inside the caller's transaction (takes the account's posting lock).

    :raises AccountNotFound: / :raises AccountClosed: / :raises AccountFrozen:
    :raises LedgerCurrencyMismatch: / :raises InsufficientFunds: / :raises InvalidExpiry:
    """
    if expires_on is not None and expires_on <= business_date:
        raise InvalidExpiry(
            "a hold must expire after the business date",
            errors={"expires_on": ["must be after the business date"]},
        )
    balance = balance_lock(account_id=account_id)
    account = Account.objects.get(pk=account_id)
    if balance.currency != amount.currency:
        raise LedgerCurrencyMismatch(
            f"account is in {balance.currency}, not {amount.currency}",
            errors={"currency": [f"the account is {balance.currency}"]},
        )
    if account.status == Account.Status.CLOSED:
        raise AccountClosed("the account is closed")
    if enforce_customer_rules and not balance.is_office:
        if account.status == Account.Status.FROZEN and account.freeze_type in ("debit", "total"):
            raise AccountFrozen("the account is frozen for debits")
        if account.status == Account.Status.DORMANT:
            raise AccountDormant("the account is dormant")
        available = balance.ledger_minor - balance.held_minor + balance.overdraft_limit_minor
        if available - amount.minor < balance.min_balance_minor:
            raise InsufficientFunds(
                "the hold exceeds the available balance",
                extra={
                    "account": account.account_number,
                    "available_minor": available,
                    "min_balance_minor": balance.min_balance_minor,
                    "requested_minor": amount.minor,
                },
            )
    hold = Hold.objects.create(
        account_id=account_id,
        amount_minor=amount.minor,
        currency=amount.currency,
        reason=reason,
        placed_on=business_date,
        expires_on=expires_on,
        placed_at=now,
        placed_by=actor,
        journal=journal,
    )
    AccountBalance.objects.filter(account_id=account_id).update(
        held_minor=F("held_minor") + amount.minor
    )
    outbox_enqueue(
        event=outbox_events.hold_placed(
            hold,
            account_number=account.account_number,
            txn_id=journal.txn_id if journal is not None else None,
            business_date=business_date,
        )
    )
    if journal is None:  # a maker-checker hold is part of its transaction's "entered" row
        audit_record(
            action="hold.placed",
            object_type="hold",
            object_id=hold.pk,
            details={
                "account": account.account_number,
                "amount": amount.to_wire(),
                "currency": amount.currency,
                "reason": reason,
            },
            actor=actor,
        )
    return hold


def hold_place(
    *,
    account_id: int,
    amount: Money,
    reason: str,
    expires_on: date | None,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
) -> Hold:
    """Place a lien that reduces the account's available balance. See ``hold_place_locked``."""
    with transaction.atomic(durable=True):
        return hold_place_locked(
            account_id=account_id,
            amount=amount,
            reason=reason,
            expires_on=expires_on,
            actor=actor,
            business_date=business_date,
            now=now,
        )


def _hold_release_locked(
    *,
    hold_id: int,
    actor: AbstractBaseUser | None,
    now: datetime,
    status: str = Hold.Status.RELEASED,
) -> Hold:
    hold = Hold.objects.filter(pk=hold_id).first()
    if hold is None:
        raise HoldNotFound(f"no hold with id {hold_id}")
    balance_lock(account_id=hold.account_id)
    hold = Hold.objects.select_for_update().get(pk=hold_id)
    if hold.status != Hold.Status.ACTIVE:
        raise HoldNotActive(f"hold {hold_id} is {hold.status}")
    hold.status = status
    hold.released_at = now
    hold.released_by = actor
    hold.save(update_fields=["status", "released_at", "released_by"])
    AccountBalance.objects.filter(account_id=hold.account_id).update(
        held_minor=F("held_minor") - hold.amount_minor
    )
    outbox_enqueue(
        event=outbox_events.hold_released(
            hold_id=hold.pk,
            account_number=Account.objects.values_list("account_number", flat=True).get(
                pk=hold.account_id
            ),
            amount_minor=hold.amount_minor,
            currency=hold.currency,
            status=status,
            actor=actor,
            now=now,
        )
    )
    return hold


def hold_release(*, hold_id: int, actor: AbstractBaseUser | None, now: datetime) -> Hold:
    """Release an active hold.

    :raises HoldNotFound: / :raises HoldNotActive: if already released, expired or consumed
    """
    with transaction.atomic(durable=True):
        secured_journal = (
            Hold.objects.filter(pk=hold_id).values_list("journal_id", flat=True).first()
        )
        if secured_journal is not None:
            raise HoldNotActive(
                "this hold secures a transaction awaiting approval; reject the transaction"
            )
        hold = _hold_release_locked(hold_id=hold_id, actor=actor, now=now)
        audit_record(action="hold.released", object_type="hold", object_id=hold.pk, actor=actor)
        return hold


def _hold_history_columns() -> list[str]:
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}
    history = Hold.history.model  # type: ignore[attr-defined]
    return [f.column for f in history._meta.concrete_fields if f.name not in own]


def holds_expire(*, business_date: date, now: datetime) -> int:
    """Expire every active hold whose ``expires_on`` is on or before ``business_date``.

    Set-based, for end of day: one statement takes the affected balance rows' posting locks in
    ascending account id (the order every posting uses), a second marks the holds expired,
    lowers each account's ``held_minor`` by their sum and writes the holds' simple-history rows.
    Holds securing a maker-checker item are left to its approval or rejection. Requires the
    caller's transaction; running it twice expires nothing the second time. Returns how many
    holds expired.
    """
    assert connection.in_atomic_block, "holds_expire requires the caller's transaction"
    due = "status = 'active' AND expires_on <= %(day)s AND journal_id IS NULL"
    columns = _hold_history_columns()
    # ``hold.released`` (status expired) per hold, in the same statement, after the balance
    # locks above (they serialise the account's events); a re-run expires and announces nothing.
    expired_event = outbox_events.enqueue_sql(
        outbox_events.EventType.HOLD_RELEASED,
        aggregate_id="s.account_number",
        time="%(now)s",
        business_date="%(day)s",
        data=f"""jsonb_build_object(
            'hold_id', s.id, 'account_number', s.account_number,
            'amount', {outbox_events.wire_amount_sql("s.amount_minor", "s.currency")},
            'currency', s.currency, 'status', 'expired', 'txn_id', NULL, 'actor', NULL)""",
    )
    sql = f"""
WITH x AS (
    UPDATE ledger_hold SET status = 'expired', released_at = %(now)s, released_by_id = NULL
     WHERE {due}
 RETURNING *
), b AS (
    UPDATE ledger_balance bl SET held_minor = bl.held_minor - s.total
      FROM (SELECT account_id, SUM(amount_minor) AS total FROM x GROUP BY account_id) s
     WHERE bl.account_id = s.account_id
), h AS (
    INSERT INTO ledger_historicalhold
           ({", ".join(columns)}, history_date, history_change_reason, history_type,
            history_user_id)
    SELECT {", ".join("x." + c for c in columns)}, %(now)s, %(reason)s, '~', NULL FROM x
)
SELECT count(e.id) FROM (
    SELECT {expired_event} AS id
      FROM (SELECT x.id, x.amount_minor, x.currency, a.account_number
              FROM x JOIN accounts_account a ON a.id = x.account_id
             ORDER BY x.account_id, x.id) s
) e
"""
    params = {"day": business_date, "now": now, "reason": f"expired (EOD {business_date})"}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT 1 FROM ledger_balance WHERE account_id IN
                   (SELECT account_id FROM ledger_hold WHERE {due})
                 ORDER BY account_id FOR UPDATE""",
            params,
        )
        cursor.execute(sql, params)
        expired = int(cursor.fetchone()[0])
    if expired:
        nudge_on_commit()
        audit_record(
            action="hold.expired",
            object_type="eod",
            object_id=business_date.isoformat(),
            details={"count": expired},
        )
    return expired


# --- office balances ---------------------------------------------------------------------------


def office_balances_fold() -> int:
    """Move every committed office-balance delta into its balance row; return how many.

    Postings append deltas instead of locking the shared office (GL) rows (see
    ``OfficeBalanceDelta``); readers already add unfolded deltas, so folding changes no
    balance anyone sees, only how many rows they must add. Safe at any time and twice:
    concurrent folds queue on an advisory lock and a delta whose posting has not committed
    waits for the next fold. Celery beat runs it every few seconds and EOD before its gate.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT ledger_office_fold()")
        return int(cursor.fetchone()[0])


# --- idempotency records -----------------------------------------------------------------------


def idempotency_purge(*, now: datetime) -> int:
    """Delete idempotency records whose TTL has passed; return how many went.

    Safe to run at any time and twice: an expired key is already treated as unused by
    ``idempotent_execute``, so deleting it changes no answer.
    """
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now).delete()
    return deleted
