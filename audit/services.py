"""Writes of the audit log: decisions, requests, sealing; and the chain's verification.

Design overview (docs/audit.md):

* ``audit_record`` is called by a service *inside* the transaction of the change it records,
  so the row exists exactly when the change committed. It costs one INSERT and takes no lock:
  the row carries the sha256 of its own content and is not yet part of the chain.
* ``audit_request_record`` writes the one row of an API or admin request, after the response,
  in its own short transaction, with the HTTP status and, for a refusal, the problem ``code``.
* ``audit_seal`` links committed rows into the hash chain (the ``audit_seal`` SQL function);
  Celery beat runs it every few seconds, and ``audit_chain_violations`` runs it first.
* ``audit_chain_violations`` recomputes every content hash and chain link from the start and
  returns what does not match, first broken row first. ``manage.py audit_verify`` and the
  end-of-day run call it.

The canonical content of a row is the JSON list ``CONTENT_FIELDS`` (sorted keys, ASCII, no
spaces, time in UTC with microseconds); the chain hash of row ``id`` at position ``seq`` is
``sha256("<seq>|<id>|<content_hash>|<prev_hash>")``, the genesis ``prev_hash`` is 64 zeros.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit.context import Actor, AuditContext, actor_of, current
from audit.models import AuditChainHead, AuditLog
from banksim.core.json_encoders import compact_encoder

logger = logging.getLogger("banksim.audit")

GENESIS_HASH = "0" * 64
HASH_VERSION = "v1"
SEAL_BATCH = 5000

CONTENT_FIELDS = (
    "at",
    "kind",
    "channel",
    "actor",
    "actor_user_id",
    "role",
    "action",
    "object_type",
    "object_id",
    "request_id",
    "outcome",
    "status_code",
    "error_code",
    "source_ip",
    "details",
)
_MAX_LENGTHS = {
    f.name: f.max_length
    for f in AuditLog._meta.concrete_fields
    if f.name in CONTENT_FIELDS and getattr(f, "max_length", None)
}

_INSERT_SQL = (
    f"INSERT INTO {AuditLog._meta.db_table} ({', '.join(CONTENT_FIELDS)}, content_hash) "
    f"VALUES ({', '.join(['%s'] * (len(CONTENT_FIELDS) + 1))})"
)


# --- canonical content -----------------------------------------------------------------------


def _clean_text(value: str, limit: int | None) -> str:
    # PostgreSQL text cannot hold NUL; a path or header could.
    value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def json_ready(value: Any) -> Any:
    """Details as plain JSON values that survive a jsonb round trip unchanged.

    Floats would not (jsonb stores numeric, ``1e20`` comes back as an int), so they are
    written as strings, like Decimals and dates.
    """
    # Commonest first: a details dict is mostly strings (Mapping is an ABC, slow to test).
    if isinstance(value, str):
        return _clean_text(value, None)
    if isinstance(value, dict | Mapping):
        # A plain string value needs no call: every posting's details are such strings.
        return {
            str(k): v if type(v) is str and "\x00" not in v else json_ready(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(v) for v in value]
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return repr(value)
    try:
        encoded = DjangoJSONEncoder().default(value)  # Decimal, date, datetime, UUID...
    except TypeError:
        encoded = str(value)
    return _clean_text(str(encoded), None)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_content(values: Mapping[str, Any]) -> str:
    """A row's canonical content: ``[HASH_VERSION, *CONTENT_FIELDS values]`` as JSON (sorted
    keys, ASCII, no spaces), ``at`` in UTC with microseconds."""
    return _canonical_json([HASH_VERSION, _utc(values["at"]), *_AFTER_AT(values)])


assert CONTENT_FIELDS[0] == "at"
_AFTER_AT = itemgetter(*CONTENT_FIELDS[1:])


# One encoder for every row (json.dumps makes a new one per call): sorted keys, ASCII, compact.
_canonical_json = compact_encoder(sort_keys=True)


def content_hash(values: Mapping[str, Any]) -> str:
    """The sha256 (hex) of a row's canonical content; ``values`` maps ``CONTENT_FIELDS``."""
    return hashlib.sha256(_canonical_content(values).encode()).hexdigest()


def chain_hash(*, seq: int, row_id: int, content: str, prev: str) -> str:
    """The chain hash of a sealed row, as the ``audit_seal`` SQL function computes it."""
    return hashlib.sha256(f"{seq}|{row_id}|{content}|{prev}".encode()).hexdigest()


def _clean_value(name: str, value: Any) -> Any:
    limit = _MAX_LENGTHS.get(name)
    # Almost every value is clean: test it in place rather than copy it through a call.
    if limit and (len(value) > limit or "\x00" in value):
        return _clean_text(value, limit)
    return value


def _literal_field(value: Any) -> str:
    """One value of an ``audit_row`` literal: quoted, backslashes and quotes escaped
    (PostgreSQL's composite input syntax); None is an empty field, which is NULL."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# A row's content is at, two runs of columns that repeat from row to row (who decided what
# on which kind of object; the request's id, outcome and source), and between and after them
# the object id and the details. A run's cleaned values, canonical JSON items and audit_row
# literal fields are made once per distinct run: for a teller posting transfers that is once,
# not per posting. A list's JSON is its items' JSON joined by commas, so the pieces join into
# exactly the text one encode of the whole list gives (tests compare with json.dumps).
_WHO_WHAT = CONTENT_FIELDS[1 : CONTENT_FIELDS.index("object_id")]
_REQUEST = CONTENT_FIELDS[CONTENT_FIELDS.index("request_id") : CONTENT_FIELDS.index("details")]
assert (*_WHO_WHAT, "object_id", *_REQUEST, "details") == CONTENT_FIELDS[1:]
_who_what_of = itemgetter(*_WHO_WHAT)
_request_of = itemgetter(*_REQUEST)


@functools.lru_cache(maxsize=1024)
def _run(names: tuple[str, ...], values: tuple[Any, ...]) -> tuple[tuple[Any, ...], str, str]:
    cleaned = tuple(map(_clean_value, names, values))
    return cleaned, _canonical_json(cleaned)[1:-1], ",".join(map(_literal_field, cleaned))


def _row_parts(values: Mapping[str, Any]) -> tuple[list[Any], str]:
    """A row's column values in ``CONTENT_FIELDS`` order then its content hash, and the same
    row as an ``audit_row`` literal (migration 0008)."""
    at_text = _utc(values["at"])
    who_what, who_what_json, who_what_literal = _run(_WHO_WHAT, _who_what_of(values))
    object_id = _clean_value("object_id", values["object_id"])
    request, request_json, request_literal = _run(_REQUEST, _request_of(values))
    details = _canonical_json(json_ready(values["details"]))
    content = (
        f'["{HASH_VERSION}","{at_text}",{who_what_json},{_canonical_json(object_id)},'
        f"{request_json},{details}]"
    )
    digest = hashlib.sha256(content.encode()).hexdigest()
    literal = (
        f'("{at_text}",{who_what_literal},{_literal_field(object_id)},{request_literal},'
        f'{_literal_field(details)},"{digest}")'
    )
    return [values["at"], *who_what, object_id, *request, details, digest], literal


def _insert(values: dict[str, Any]) -> None:
    params, _ = _row_parts(values)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, params)


def _row(
    *,
    context: AuditContext,
    actor: Actor,
    kind: str,
    action: str,
    object_type: str,
    object_id: str,
    outcome: str,
    status_code: int | None,
    error_code: str,
    details: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        # The audit time is the wall clock at writing, like a history row's date: it is what
        # happened when, not a business fact, so it is read here rather than passed in.
        "at": timezone.now(),
        "kind": kind,
        "channel": context.channel,
        "actor": actor.name,
        "actor_user_id": actor.user_id,
        "role": actor.role,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "request_id": context.request_id,
        "outcome": outcome,
        "status_code": status_code,
        "error_code": error_code,
        "source_ip": context.source_ip,
        "details": dict(details or {}),
    }


# --- writing ---------------------------------------------------------------------------------


def _skip_decisions() -> bool:
    # bench/transfers.py only, set in its own process to price this row; never from the env.
    return bool(getattr(settings, "AUDIT_BENCH_SKIP_DECISIONS", False))


def _decision(
    *,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any] | None,
    outcome: str,
    actor: Any,
) -> dict[str, Any]:
    context = current()
    who = actor_of(actor) if actor is not None and actor.is_authenticated else context.actor()
    return _row(
        context=context,
        actor=who,
        kind=AuditLog.Kind.DECISION,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        status_code=None,
        error_code="",
        details=details,
    )


def audit_object_note(*, object_type: str, object_id: str | int) -> None:
    """Name the object a request acted on first (its request row says which), if unnamed."""
    context = current()
    if context.request is not None and context.first_object is None:
        context.first_object = (object_type, str(object_id))


def audit_record(
    *,
    action: str,
    object_type: str,
    object_id: str | int,
    details: Mapping[str, Any] | None = None,
    outcome: str = AuditLog.Outcome.SUCCESS,
    actor: Any = None,
) -> None:
    """Record a decision in the caller's transaction: one INSERT, no lock.

    Who, role, request id, channel and source IP come from the audit context
    (``audit.context``); ``actor`` (a user) overrides who acted when the service knows better,
    e.g. an admin action or a task acting for a user. Requires the caller's transaction: the
    row must commit or roll back with the change it records.
    """
    assert connection.in_atomic_block, "audit_record must run in the transaction it records"
    if _skip_decisions():
        return
    audit_object_note(object_type=object_type, object_id=object_id)
    _insert(
        _decision(
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details,
            outcome=outcome,
            actor=actor,
        )
    )


def audit_decision_row(
    *,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any] | None = None,
    actor: Any = None,
) -> str | None:
    """The decision row ``audit_record`` would write, for another statement to write.

    For a write that makes its row in the same statement as the change (``ledger_post``'s
    ``p_audit``): the row as an ``audit_row`` literal, hashed like any row, so it verifies
    like any other; ``audit_row_insert`` writes it. Call ``audit_object_note`` too. ``None``
    when decision rows are switched off (the benchmark).
    """
    if _skip_decisions():
        return None
    _, literal = _row_parts(
        _decision(
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=details,
            outcome=AuditLog.Outcome.SUCCESS,
            actor=actor,
        )
    )
    return literal


def outcome_of(status_code: int) -> str:
    if status_code >= 500:
        return AuditLog.Outcome.ERROR
    if status_code >= 400:
        return AuditLog.Outcome.REFUSED
    return AuditLog.Outcome.SUCCESS


def audit_request_record(
    *,
    context: AuditContext,
    action: str,
    object_type: str,
    object_id: str,
    status_code: int,
    error_code: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record one API or admin request and its outcome, in a transaction of its own.

    Runs after the response is built, so a refusal's row survives the rollback of the
    request's own work, and a read has exactly this one row.
    """
    row = _row(
        context=context,
        actor=context.actor(),
        kind=AuditLog.Kind.REQUEST,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome_of(status_code),
        status_code=status_code,
        error_code=error_code,
        details=details,
    )
    if connection.in_atomic_block:
        # Inside someone's transaction (a test's): a savepoint keeps a failure local.
        with transaction.atomic():
            _insert(row)
    else:
        _insert(row)  # autocommit: the INSERT is its own transaction, one round trip


def audit_seal(*, max_rows: int = SEAL_BATCH) -> int:
    """Link every committed unsealed row into the hash chain; return how many were sealed.

    Safe to run at any time, concurrently and twice: sealers queue on the chain head's row
    lock. Runs in batches of ``max_rows``, each batch its own short transaction.
    """
    total = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT audit_seal(%s)", [max_rows])
                sealed = int(cursor.fetchone()[0])
        total += sealed
        if sealed < max_rows:
            return total


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainViolation:
    """One place where the stored chain disagrees with what its rows say."""

    row_id: int | None
    seq: int | None
    problem: str
    detail: str

    def __str__(self) -> str:
        where = f"row id {self.row_id}" if self.row_id is not None else "no row"
        return f"{where} (chain seq {self.seq}): {self.problem}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    sealed: int
    unsealed: int
    head_seq: int
    head_hash: str
    violations: list[ChainViolation]


_VERIFY_FIELDS = ("id", *CONTENT_FIELDS, "content_hash", "chain_seq", "prev_hash", "row_hash")


def _sealed_rows() -> Iterable[dict[str, Any]]:
    return (
        AuditLog.objects.filter(chain_seq__isnull=False)
        .order_by("chain_seq")
        .values(*_VERIFY_FIELDS)
        .iterator(chunk_size=2000)
    )


def _check_row(row: dict[str, Any], expected_seq: int, prev: str) -> list[ChainViolation]:
    found: list[ChainViolation] = []
    row_id, seq = row["id"], row["chain_seq"]

    def broken(problem: str, detail: str) -> None:
        found.append(ChainViolation(row_id=row_id, seq=seq, problem=problem, detail=detail))

    if seq != expected_seq:
        missing = "a row is missing before it" if seq > expected_seq else "seq out of order"
        broken("sequence", f"expected chain seq {expected_seq}, found {seq}: {missing}")
    if row["prev_hash"] != prev:
        broken("link", "prev_hash is not the previous row's row_hash (deleted or moved row)")
    if content_hash(row) != row["content_hash"]:
        broken("content", "the row's content does not match its content_hash (edited row)")
    expected = chain_hash(
        seq=seq, row_id=row_id, content=row["content_hash"], prev=row["prev_hash"]
    )
    if row["row_hash"] != expected:
        broken("hash", "row_hash does not match seq, id, content_hash and prev_hash")
    return found


def audit_chain_report(*, seal: bool = True) -> ChainReport:
    """Seal what is committed (unless ``seal`` is False), then verify the whole chain.

    Every sealed row is checked in chain order against the one before it and its own
    content; after a break, checking goes on from the row's stored hash, so each tampered
    place is reported once. The last row must be the one the chain head names, which catches
    rows deleted from the end. Reads the whole table once, streaming.
    """
    if seal:
        audit_seal()
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq = head.last_seq if head else 0
    head_hash = head.last_hash if head else GENESIS_HASH
    violations: list[ChainViolation] = []
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    last_seq = 0
    for row in _sealed_rows():
        violations.extend(_check_row(row, expected_seq, prev))
        expected_seq, prev = row["chain_seq"] + 1, row["row_hash"]
        last_seq = row["chain_seq"]
        count += 1
    if last_seq < head_seq:
        violations.append(
            ChainViolation(
                row_id=None,
                seq=last_seq + 1,
                problem="missing",
                detail=f"the chain head is at seq {head_seq} but the last sealed row is "
                f"seq {last_seq}: rows {last_seq + 1}..{head_seq} were deleted",
            )
        )
    elif last_seq > head_seq or (count and prev != head_hash):
        violations.append(
            ChainViolation(
                row_id=None,
                seq=head_seq,
                problem="head",
                detail="the chain head does not name the last sealed row",
            )
        )
    half_sealed = AuditLog.objects.filter(chain_seq__isnull=True, row_hash__isnull=False)
    for row_id in half_sealed.values_list("id", flat=True)[:100]:
        violations.append(
            ChainViolation(
                row_id=row_id,
                seq=None,
                problem="sequence",
                detail="the row has a row_hash but no chain seq (taken out of the chain)",
            )
        )
    violations.sort(key=lambda v: (v.seq if v.seq is not None else 2**63, v.row_id or 0))
    unsealed = AuditLog.objects.filter(row_hash__isnull=True).count()
    return ChainReport(
        sealed=count,
        unsealed=unsealed,
        head_seq=head_seq,
        head_hash=head_hash,
        violations=violations,
    )


def audit_chain_violations(*, seal: bool = True) -> list[ChainViolation]:
    """Return every break in the audit chain, the first broken row first (empty: intact).

    The end-of-day run calls this; ``manage.py audit_verify`` prints it.
    """
    return audit_chain_report(seal=seal).violations
