"""The one call that writes entries: ``journal_post`` wraps the ``ledger_post`` SQL function.

Everything that moves money (movements, reversals, approvals, fees, interest) builds a list of
``Leg`` and calls ``journal_post`` inside its caller's transaction. The SQL function takes the
balance-row locks in ascending account id, checks the account rules and writes journal,
entries and balances in a single round trip, which keeps the time a hot account is locked to
one statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import DatabaseError, connection

from banksim.core.errors import DomainError
from banksim.core.json_encoders import compact_encoder
from banksim.core.money import Money
from ledger.errors import BY_CODE, MalformedLegs, SameAccount
from outbox.events import RenderedEvent
from outbox.nudge import nudge_on_commit


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: int
    side: str  # "D" or "C"
    amount: Money
    purpose: str = "principal"


@dataclass(frozen=True, slots=True)
class PostedJournal:
    journal_id: int
    txn_id: str


_SQL = (
    "SELECT journal_id, txn_id FROM ledger_post("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::bigint[], %s::text[], "
    "%s::bigint[], %s::text[], %s, %s, %s::bigint[], %s::jsonb, %s::text, %s::audit_row, "
    "%s::text)"
)


# Made once: json.dumps makes a new encoder per call (banksim.core.json_encoders).
_compact_json = compact_encoder()


def _domain_error(exc: DatabaseError) -> DomainError | None:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    message = getattr(diag, "message_primary", None)
    if not message or message not in BY_CODE:
        return None
    try:
        extra: dict[str, Any] = json.loads(diag.message_detail or "{}")  # type: ignore[union-attr]
    except ValueError:
        extra = {}
    cls = BY_CODE[message]
    detail = {
        "ledger.insufficient_funds": "the debit exceeds the available balance",
        "account.closed": "the account is closed",
        "account.frozen": "the account is frozen for this movement",
        "account.dormant": "the account is dormant; reactivate it before debiting",
        "account.not_found": "an account in this movement does not exist",
        "ledger.currency_mismatch": "the amount's currency differs from the account's",
    }.get(message)
    return cls(detail, extra=extra)  # type: ignore[call-arg]


def _event_params(event: dict[str, Any] | RenderedEvent | None) -> tuple[str | None, str | None]:
    if event is None:
        return None, None
    if isinstance(event, RenderedEvent):
        return event.envelope, event.data
    return _compact_json(event), None


def journal_post(
    *,
    legs: list[Leg],
    txn_type: str,
    channel: str,
    business_date: date,
    now: datetime,
    narration: str = "",
    maker_id: int | None = None,
    checker_id: int | None = None,
    reversal_of_id: int | None = None,
    details: dict[str, Any] | None = None,
    journal_id: int | None = None,
    check_status: bool = True,
    check_funds: bool = True,
    consume_hold_ids: list[int] | None = None,
    event: dict[str, Any] | RenderedEvent | None = None,
    audit: str | None = None,
    txn_id: str | None = None,
) -> PostedJournal:
    """Post balanced legs as one journal (or post an entered journal when ``journal_id``).

    Requires the caller's transaction. Locks every account's balance row until it ends.
    ``event`` is written to the outbox by the same statement: a ``RenderedEvent`` whole but
    for the journal's identity (``outbox.events.movement_posted``), or a ``posting_event``
    whose legs the statement renders. So is ``audit``, a decision row about ``txn_id``
    (``audit.services.audit_decision_row``), which then must be given: the new journal's
    txn_id, drawn by the caller (``movement_post`` draws it with its accounts). Without it the
    statement draws one.

    :raises MalformedLegs: if legs mix currencies, do not balance, or have fewer than two
    :raises InsufficientFunds: / :raises AccountClosed: / :raises AccountFrozen:
    :raises AccountDormant: / :raises AccountNotFound: / :raises LedgerCurrencyMismatch:
    :raises JournalNotPending: when posting an entered journal that was already decided
    """
    assert connection.in_atomic_block, "journal_post requires the caller's transaction"
    assert audit is None or txn_id is not None, "an audit row names the txn_id it was built for"
    currencies = {leg.amount.currency for leg in legs}
    if len(legs) < 2 or len(currencies) != 1:
        raise MalformedLegs("a journal needs at least two legs in one currency")
    if any(not leg.amount.is_positive() or leg.side not in ("D", "C") for leg in legs):
        raise MalformedLegs("every leg is a positive amount on side D or C")
    net = sum(leg.amount.minor if leg.side == "C" else -leg.amount.minor for leg in legs)
    if net != 0:
        raise MalformedLegs(f"legs net {net} minor units, not zero")
    debits = {leg.account_id for leg in legs if leg.side == "D"}
    credits = {leg.account_id for leg in legs if leg.side == "C"}
    if debits & credits:
        raise SameAccount("an account cannot be debited and credited in the same movement")
    params = [
        journal_id,
        txn_type,
        channel,
        business_date,
        now,
        narration,
        maker_id,
        checker_id,
        reversal_of_id,
        _compact_json(details or {}),
        currencies.pop(),
        [leg.account_id for leg in legs],
        [leg.side for leg in legs],
        [leg.amount.minor for leg in legs],
        [leg.purpose for leg in legs],
        check_status,
        check_funds,
        consume_hold_ids or [],
        *_event_params(event),
        audit,
        txn_id,
    ]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_SQL, params)
            row = cursor.fetchone()
    except DatabaseError as exc:
        domain = _domain_error(exc)
        if domain is None:
            raise
        raise domain from exc
    if event is not None:
        nudge_on_commit()
    return PostedJournal(journal_id=int(row[0]), txn_id=str(row[1]))
