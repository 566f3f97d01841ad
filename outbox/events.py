"""The event catalogue: every type BankSim publishes, and the builders of their ``data``.

Each builder takes the model instance (or values) a service just wrote and returns an
``Event``; the service passes it to ``outbox.services.outbox_enqueue`` in its transaction.
docs/events.md describes every type and field. Fields are only ever added; a change that
would break a consumer is published as a new type (``banksim.transaction.posted.v2``) next
to the old one, and the envelope's ``schemaversion`` changes only if the envelope does.
``data`` never carries names, national ids or contact details: consumers get the CIF id and
look the customer up if they may.

Amounts are decimal strings in the currency's exponent ("100.50", "1200" for JPY), as on the
API. Times are ISO 8601 UTC. Accounts are referred to by account number, transactions by
``txn_id``, customers by ``cif_id``; database ids appear only next to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings

from banksim.core.json_encoders import compact_encoder
from banksim.core.money import CURRENCY_EXPONENTS, Money, currency_exponent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from accounts.models import Account, Customer
    from ledger.models import Hold, Journal
    from ledger.posting import Leg
    from ledger.services import Movement

# The envelope's ``schemaversion``: bumped only if the envelope itself changes.
SCHEMA_VERSION = 1
TYPE_PREFIX = "banksim."


class EventType:
    """Every event type. The routing key is the type without ``banksim.``."""

    CUSTOMER_CREATED = "banksim.customer.created"
    CUSTOMER_UPDATED = "banksim.customer.updated"
    CUSTOMER_KYC_CHANGED = "banksim.customer.kyc_changed"
    ACCOUNT_OPENED = "banksim.account.opened"
    ACCOUNT_FROZEN = "banksim.account.frozen"
    ACCOUNT_UNFROZEN = "banksim.account.unfrozen"
    ACCOUNT_CLOSED = "banksim.account.closed"
    ACCOUNT_DORMANT = "banksim.account.dormant"
    HOLD_PLACED = "banksim.hold.placed"
    HOLD_RELEASED = "banksim.hold.released"
    TRANSACTION_POSTED = "banksim.transaction.posted"
    TRANSACTION_ENTERED = "banksim.transaction.entered"
    TRANSACTION_APPROVED = "banksim.transaction.approved"
    TRANSACTION_REJECTED = "banksim.transaction.rejected"
    TRANSACTION_REVERSED = "banksim.transaction.reversed"
    LIMIT_BREACHED = "banksim.limit.breached"
    EOD_STARTED = "banksim.eod.started"
    EOD_FINISHED = "banksim.eod.finished"
    EOD_STEP_FINISHED = "banksim.eod.step_finished"
    EOD_PROGRESS = "banksim.eod.progress"


# type -> (source, aggregate type)
CATALOGUE: dict[str, tuple[str, str]] = {
    EventType.CUSTOMER_CREATED: ("/banksim/accounts", "customer"),
    EventType.CUSTOMER_UPDATED: ("/banksim/accounts", "customer"),
    EventType.CUSTOMER_KYC_CHANGED: ("/banksim/accounts", "customer"),
    EventType.ACCOUNT_OPENED: ("/banksim/accounts", "account"),
    EventType.ACCOUNT_FROZEN: ("/banksim/accounts", "account"),
    EventType.ACCOUNT_UNFROZEN: ("/banksim/accounts", "account"),
    EventType.ACCOUNT_CLOSED: ("/banksim/accounts", "account"),
    EventType.ACCOUNT_DORMANT: ("/banksim/accounts", "account"),
    EventType.HOLD_PLACED: ("/banksim/ledger", "account"),
    EventType.HOLD_RELEASED: ("/banksim/ledger", "account"),
    EventType.TRANSACTION_POSTED: ("/banksim/ledger", "transaction"),
    EventType.TRANSACTION_ENTERED: ("/banksim/ledger", "transaction"),
    EventType.TRANSACTION_APPROVED: ("/banksim/ledger", "transaction"),
    EventType.TRANSACTION_REJECTED: ("/banksim/ledger", "transaction"),
    EventType.TRANSACTION_REVERSED: ("/banksim/ledger", "transaction"),
    EventType.LIMIT_BREACHED: ("/banksim/limits", "account"),
    EventType.EOD_STARTED: ("/banksim/eod", "eod"),
    EventType.EOD_FINISHED: ("/banksim/eod", "eod"),
    EventType.EOD_STEP_FINISHED: ("/banksim/eod", "eod"),
    EventType.EOD_PROGRESS: ("/banksim/eod", "eod"),
}


def routing_key(event_type: str) -> str:
    return event_type.removeprefix(TYPE_PREFIX)


@dataclass(frozen=True, slots=True)
class Event:
    """One event as a service hands it to the outbox (the row adds id, lane and status)."""

    type: str
    aggregate_id: str
    # When the change happened (the service's ``now``); None: the database transaction's start.
    time: datetime | None
    business_date: date | None
    data: dict[str, Any] = field(default_factory=dict)
    # None: the next number of the aggregate's counter (customers, accounts, end of day).
    sequence: int | None = None

    @property
    def source(self) -> str:
        return CATALOGUE[self.type][0]

    @property
    def aggregate_type(self) -> str:
        return CATALOGUE[self.type][1]


def enqueue_sql(
    event_type: str,
    *,
    aggregate_id: str,
    time: str,
    business_date: str,
    data: str,
    sequence: str = "NULL",
) -> str:
    """An ``outbox_enqueue(...)`` call for set-based services that write events in SQL.

    The arguments are SQL expressions (columns or placeholders); ``sequence`` "NULL" takes
    the aggregate's counter (a transaction's events pass their fixed position instead). Bulk
    EOD statements select this once per changed row, so their events commit with the change
    and cost no round trip.
    """
    source, aggregate_type = CATALOGUE[event_type]
    return (
        f"outbox_enqueue('{event_type}', '{source}', '{aggregate_type}', {aggregate_id},"
        f" {sequence}, {time}, {business_date}, {data})"
    )


def wire_amount_sql(minor: str, currency: str) -> str:
    """SQL rendering ``minor`` units of ``currency`` as ``Money.to_wire`` does ("100.50")."""
    cases = " ".join(f"WHEN '{code}' THEN {exp}" for code, exp in CURRENCY_EXPONENTS.items())
    exponent = f"(CASE {currency} {cases} ELSE 2 END)"
    return f"round({minor}::numeric / power(10::numeric, {exponent}), {exponent})::text"


def _who(actor: AbstractBaseUser | None) -> str | None:
    return None if actor is None else actor.get_username()


def _wire(minor: int, currency: str) -> str:
    return Money.from_minor(minor, currency).to_wire()


# --- customers -------------------------------------------------------------------------------


def _customer_data(customer: Customer) -> dict[str, Any]:
    return {
        "cif_id": customer.cif_id,
        "customer_id": customer.pk,
        "customer_type": customer.customer_type,
        "segment": customer.segment,
        "risk_grade": customer.risk_grade,
        "kyc_status": customer.kyc_status,
        "home_branch_id": customer.home_branch_id,
    }


def customer_created(
    customer: Customer, *, actor: AbstractBaseUser | None, business_date: date | None = None
) -> Event:
    return Event(
        type=EventType.CUSTOMER_CREATED,
        aggregate_id=customer.cif_id,
        time=customer.created_at,
        business_date=business_date,
        data={**_customer_data(customer), "actor": _who(actor)},
    )


def customer_updated(
    customer: Customer, *, changed: list[str], actor: AbstractBaseUser | None
) -> Event:
    return Event(
        type=EventType.CUSTOMER_UPDATED,
        aggregate_id=customer.cif_id,
        time=None,
        business_date=None,
        # Only fields without personal data are echoed; the list says what else changed.
        data={**_customer_data(customer), "changed": sorted(changed), "actor": _who(actor)},
    )


def customer_kyc_changed(
    customer: Customer,
    *,
    previous: str,
    reason: str,
    actor: AbstractBaseUser | None,
    business_date: date,
) -> Event:
    return Event(
        type=EventType.CUSTOMER_KYC_CHANGED,
        aggregate_id=customer.cif_id,
        time=None,
        business_date=business_date,
        data={
            **_customer_data(customer),
            "previous_kyc_status": previous,
            "reason": reason,
            "actor": _who(actor),
        },
    )


# --- accounts --------------------------------------------------------------------------------


def _account_data(account: Account) -> dict[str, Any]:
    return {
        "account_number": account.account_number,
        "account_id": account.pk,
        "kind": account.kind,
        "currency": account.currency,
        "status": account.status,
        "freeze_type": account.freeze_type,
    }


def account_opened(
    account: Account,
    *,
    product_code: str,
    cif_id: str | None,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
) -> Event:
    return Event(
        type=EventType.ACCOUNT_OPENED,
        aggregate_id=account.account_number,
        time=now,
        business_date=business_date,
        data={
            **_account_data(account),
            "product": product_code,
            "cif_id": cif_id,
            "office_role": account.office_role,
            "branch_id": account.branch_id,
            "opened_on": business_date.isoformat(),
            "actor": _who(actor),
        },
    )


def account_status_changed(
    event_type: str,
    account: Account,
    *,
    reason: str,
    actor: AbstractBaseUser | None,
    now: datetime,
    business_date: date | None = None,
) -> Event:
    """``account.frozen``, ``account.unfrozen``, ``account.closed`` or ``account.dormant``."""
    return Event(
        type=event_type,
        aggregate_id=account.account_number,
        time=now,
        business_date=business_date,
        data={**_account_data(account), "reason": reason, "actor": _who(actor)},
    )


# --- holds (events of the account they are on) -----------------------------------------------


def hold_placed(
    hold: Hold, *, account_number: str, txn_id: str | None, business_date: date
) -> Event:
    return Event(
        type=EventType.HOLD_PLACED,
        aggregate_id=account_number,
        time=hold.placed_at,
        business_date=business_date,
        data={
            "hold_id": hold.pk,
            "account_number": account_number,
            "amount": _wire(hold.amount_minor, hold.currency),
            "currency": hold.currency,
            "reason": hold.reason,
            "expires_on": hold.expires_on.isoformat() if hold.expires_on else None,
            "txn_id": txn_id,
            "actor": _who(hold.placed_by) if hold.placed_by_id else None,
        },
    )


def hold_released(
    *,
    hold_id: int,
    account_number: str,
    amount_minor: int,
    currency: str,
    status: str,
    actor: AbstractBaseUser | None,
    now: datetime,
    txn_id: str | None = None,
) -> Event:
    """``status``: released (by staff or a rejection), consumed (by a posting), expired."""
    return Event(
        type=EventType.HOLD_RELEASED,
        aggregate_id=account_number,
        time=now,
        business_date=None,
        data={
            "hold_id": hold_id,
            "account_number": account_number,
            "amount": _wire(amount_minor, currency),
            "currency": currency,
            "status": status,
            "txn_id": txn_id,
            "actor": _who(actor),
        },
    )


# --- transactions ----------------------------------------------------------------------------
# A transaction's events have fixed positions in its sequence, so the posting path needs no
# counter: posted or entered = 1, approved or rejected = 2, reversed = 2 (posted directly) or
# 3 (posted by approval).


def posting_event(
    event_type: str,
    *,
    currency: str,
    data: dict[str, Any],
    sequence: int,
    aggregate_id: str | None = None,
    nest: str | None = None,
) -> dict[str, Any]:
    """The ``p_event`` argument of ``ledger_post``: it adds txn_id, journal_id and legs.

    ``aggregate_id`` None means the journal being posted is the aggregate (its txn_id is made
    by the function); ``nest`` puts the posted journal's identity and legs under that key.
    """
    event: dict[str, Any] = {
        "type": event_type,
        "source": CATALOGUE[event_type][0],
        "sequence": sequence,
        "exponent": currency_exponent(currency),
        "data": data,
    }
    if aggregate_id is not None:
        event["aggregate_id"] = aggregate_id
    if nest is not None:
        event["nest"] = nest
    return event


@dataclass(frozen=True, slots=True)
class RenderedEvent:
    """A posting's event whose data the caller rendered whole, but for the journal's identity.

    ``ledger_post`` takes ``envelope`` (type, source, sequence as JSON text) as ``p_event``
    and ``data``, a JSON object's text, as ``p_event_data``, and writes the data with
    ``journal_id`` and ``txn_id`` added: no JSON of the event is parsed and rebuilt on the way.
    """

    envelope: str
    data: str


# Made once: json.dumps makes a new encoder per call (banksim.core.json_encoders).
_compact_json = compact_encoder()
_POSTED_ENVELOPE = _compact_json(
    {
        "type": EventType.TRANSACTION_POSTED,
        "source": CATALOGUE[EventType.TRANSACTION_POSTED][0],
        "sequence": 1,
    }
)


def posted_legs(legs: list[Leg], numbers: Mapping[int, str]) -> list[dict[str, str]] | None:
    """A journal's legs as its event shows them, or None if an account number is not known.

    The same list ``ledger_post`` renders from the accounts it reads (account number, side,
    amount in the currency's exponent, purpose); a caller that already holds every account
    passes it so the posting does not build it in SQL.
    """
    if any(leg.account_id not in numbers for leg in legs):
        return None
    return [
        {
            "account": numbers[leg.account_id],
            "side": leg.side,
            "amount": leg.amount.to_wire(),
            "purpose": leg.purpose,
        }
        for leg in legs
    ]


def fee_summary(fees: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """What a consumer needs of each fee applied (the journal's details keep the rest)."""
    return [
        {
            "rule_id": f["rule_id"],
            "rule_version": f["rule_version"],
            "event": f["event"],
            "fee": f["fee"],
            "tax": f["tax"],
            "currency": f["currency"],
            "waived": f["waived_by"] is not None,
            "free_use": f["free_use"],
        }
        for f in fees or []
    ]


def movement_data(
    movement: Movement,
    *,
    debit_account: str,
    credit_account: str,
    fees: list[dict[str, Any]] | None,
    actor: AbstractBaseUser | None,
) -> dict[str, Any]:
    """The part of ``transaction.posted`` / ``entered`` that describes the movement."""
    return {
        "txn_type": movement.txn_type,
        "channel": movement.channel,
        "amount": movement.amount.to_wire(),
        "currency": movement.amount.currency,
        "debit_account": debit_account,
        "credit_account": credit_account,
        "narration": movement.narration,
        # Fees are charged by the same journal: they are announced here, not as own events.
        "fees": fee_summary(fees),
        "maker": _who(actor),
    }


def movement_posted(
    movement: Movement,
    *,
    debit_account: str,
    credit_account: str,
    fees: list[dict[str, Any]] | None,
    actor: AbstractBaseUser | None,
    legs: list[Leg],
    numbers: Mapping[int, str],
) -> RenderedEvent | dict[str, Any] | None:
    """``ledger_post``'s event for a movement posted at once (None: the benchmark's switch).

    Rendered here when ``numbers`` (account id to number) names every account the legs
    touch: the movement's two and the fee engine's GL accounts. Otherwise ``ledger_post``
    reads the numbers and renders the legs.
    """
    if settings.OUTBOX_BENCH_SKIP_POSTING_EVENTS:
        return None
    data = movement_data(
        movement,
        debit_account=debit_account,
        credit_account=credit_account,
        fees=fees,
        actor=actor,
    )
    data["status"] = "posted"
    rendered = posted_legs(legs, numbers)
    if rendered is None:
        return posting_event(
            EventType.TRANSACTION_POSTED, currency=movement.amount.currency, sequence=1, data=data
        )
    data["legs"] = rendered  # "currency" is the movement's already, as ledger_post would add
    return RenderedEvent(envelope=_POSTED_ENVELOPE, data=_compact_json(data))


def transaction_approved(
    journal: Journal, *, currency: str, actor: AbstractBaseUser
) -> dict[str, Any]:
    """``ledger_post``'s event when a checker posts an entered transaction."""
    return posting_event(
        EventType.TRANSACTION_APPROVED,
        currency=currency,
        sequence=2,
        aggregate_id=journal.txn_id,
        data={
            "txn_type": journal.txn_type,
            "channel": journal.channel,
            "status": "posted",
            "fees": fee_summary(journal.details.get("fees")),
            "checker": _who(actor),
        },
    )


def transaction_reversed(
    original: Journal, *, currency: str, reason: str, actor: AbstractBaseUser | None
) -> dict[str, Any]:
    """``ledger_post``'s event for a reversal: on the original, the reversal under ``reversal``."""
    return posting_event(
        EventType.TRANSACTION_REVERSED,
        currency=currency,
        sequence=reversal_sequence(original),
        aggregate_id=original.txn_id,
        nest="reversal",
        data={
            "txn_id": original.txn_id,
            "journal_id": original.pk,
            "txn_type": original.txn_type,
            "reason": reason,
            "actor": _who(actor),
        },
    )


def transaction_entered(
    journal: Journal,
    movement: Movement,
    *,
    debit_account: str,
    credit_account: str,
    actor: AbstractBaseUser | None,
) -> Event:
    return Event(
        type=EventType.TRANSACTION_ENTERED,
        aggregate_id=journal.txn_id,
        time=journal.entered_at,
        business_date=journal.business_date,
        sequence=1,
        data={
            **movement_data(
                movement,
                debit_account=debit_account,
                credit_account=credit_account,
                fees=journal.details.get("fees"),
                actor=actor,
            ),
            "txn_id": journal.txn_id,
            "journal_id": journal.pk,
            "status": journal.status,
            "approval_reason": journal.details.get("approval_reason"),
        },
    )


def transaction_rejected(
    journal: Journal, *, reason: str, actor: AbstractBaseUser, now: datetime
) -> Event:
    return Event(
        type=EventType.TRANSACTION_REJECTED,
        aggregate_id=journal.txn_id,
        time=now,
        business_date=journal.business_date,
        sequence=2,
        data={
            "txn_id": journal.txn_id,
            "journal_id": journal.pk,
            "txn_type": journal.txn_type,
            "status": journal.status,
            "reason": reason,
            "checker": _who(actor),
        },
    )


def reversal_sequence(original: Journal) -> int:
    """Where ``transaction.reversed`` falls in the original's sequence.

    Only an approval sets a journal's checker: posted directly (1) then reversed is 2;
    entered (1), approved (2), then reversed is 3.
    """
    return 3 if original.checker_id is not None else 2


# --- limits ----------------------------------------------------------------------------------


def limit_breached(
    *,
    account_number: str,
    account_id: int,
    rule_id: int,
    action: str,
    txn_type: str,
    channel: str,
    requested: Money,
    limit_extra: dict[str, Any],
    business_date: date,
    now: datetime,
) -> Event:
    """``action``: ``refused`` (the debit was rolled back) or ``approval_required``."""
    return Event(
        type=EventType.LIMIT_BREACHED,
        aggregate_id=account_number,
        time=now,
        business_date=business_date,
        data={
            "account_number": account_number,
            "account_id": account_id,
            "rule_id": rule_id,
            "action": action,
            "txn_type": txn_type,
            "channel": channel,
            "requested_amount": requested.to_wire(),
            "currency": requested.currency,
            **{k: v for k, v in limit_extra.items() if k not in ("rule_id", "currency")},
        },
    )


# --- end of day (emitted by the EOD issue; defined here so consumers can bind now) ----------


def eod_started(*, calendar_code: str, business_date: date, now: datetime) -> Event:
    return Event(
        type=EventType.EOD_STARTED,
        aggregate_id=calendar_code,
        time=now,
        business_date=business_date,
        data={"calendar": calendar_code, "business_date": business_date.isoformat()},
    )


def eod_finished(
    *, calendar_code: str, business_date: date, next_business_date: date, now: datetime
) -> Event:
    return Event(
        type=EventType.EOD_FINISHED,
        aggregate_id=calendar_code,
        time=now,
        business_date=business_date,
        data={
            "calendar": calendar_code,
            "business_date": business_date.isoformat(),
            "next_business_date": next_business_date.isoformat(),
        },
    )


def eod_step_finished(
    *,
    calendar_code: str,
    business_date: date,
    step: str,
    rows: int,
    summary: dict[str, Any],
    now: datetime,
) -> Event:
    """Written with the step's checkpoint, so a step is announced done exactly when it is."""
    return Event(
        type=EventType.EOD_STEP_FINISHED,
        aggregate_id=calendar_code,
        time=now,
        business_date=business_date,
        data={
            "calendar": calendar_code,
            "business_date": business_date.isoformat(),
            "step": step,
            "rows": rows,
            "seconds": summary.get("seconds"),
            "summary": summary,
        },
    )


def eod_progress(
    *,
    calendar_code: str,
    business_date: date,
    step: str,
    rows_done: int,
    rows_total: int,
    rows_per_s: float,
    eta_seconds: float | None,
    now: datetime,
) -> Event:
    return Event(
        type=EventType.EOD_PROGRESS,
        aggregate_id=calendar_code,
        time=now,
        business_date=business_date,
        data={
            "calendar": calendar_code,
            "business_date": business_date.isoformat(),
            "step": step,
            "rows_done": rows_done,
            "rows_total": rows_total,
            "rows_per_s": round(rows_per_s),
            "eta_seconds": None if eta_seconds is None else round(eta_seconds, 1),
        },
    )
