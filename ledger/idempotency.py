"""Exactly-once money-moving POSTs: the ``Idempotency-Key`` protocol.

Design overview: a client sends a key of its choosing with every money-moving POST and
retries with the same key until it gets an answer. ``idempotent_execute`` runs the request's
operation and stores the rendered response (status and bytes) in an ``IdempotencyRecord``
*in the same database transaction* as the posting, so a key is used if and only if the
request's effects committed. A retry whose request is identical (same method, path and
canonical JSON body) gets the stored bytes back; a different request under a used key is
refused. While the first request is in flight, a transaction-scoped advisory lock on the
(client, key) pair makes a concurrent retry fail fast with 409 instead of queueing behind
the row locks of the posting. A domain error rolls everything back, the record included, so
a refused request does not burn its key: the client may fix the cause and retry with it.
See docs/idempotency.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from ledger.errors import (
    IdempotencyInFlight,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
)
from ledger.models import IdempotencyRecord
from limits.services import records_limit_breaches

T = TypeVar("T")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII (space to tilde); HTTP already strips surrounding whitespace.
_KEY = re.compile(r"[\x20-\x7e]{1,255}", re.ASCII)
# Keeps this feature's advisory-lock ids apart from any other user of the 64-bit lock space.
_LOCK_NAMESPACE = b"banksim.idempotency\x00"


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """Return the sha256 of method, path and the canonical JSON of the parsed body.

    Canonical JSON (sorted keys, no spaces) makes a retry that reorders keys or changes
    whitespace the same request; any change of a value is a different one.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """One request's claim on a client's key."""

    client_id: str
    key: str
    method: str
    path: str
    request_hash: str

    @classmethod
    def build(
        cls, *, client_id: str, key: str | None, method: str, path: str, body: Any
    ) -> IdempotencyClaim:
        """Validate the key and fingerprint the request.

        :raises IdempotencyKeyMissing: if no key (or an empty one) was sent
        :raises IdempotencyKeyInvalid: if the key is longer than 255 characters or holds
            anything but printable ASCII
        """
        if not key:
            raise IdempotencyKeyMissing(
                f"send an {HEADER} header (e.g. a UUID) with every money-moving POST"
            )
        if not _KEY.fullmatch(key):
            raise IdempotencyKeyInvalid(f"the {HEADER} must be 1 to 255 printable ASCII characters")
        return cls(
            client_id=client_id,
            key=key,
            method=method.upper(),
            path=path,
            request_hash=request_fingerprint(method=method, path=path, body=body),
        )

    @property
    def lock_id(self) -> int:
        """A signed 64-bit id for ``pg_try_advisory_xact_lock`` derived from client and key."""
        digest = hashlib.sha256(
            _LOCK_NAMESPACE + self.client_id.encode() + b"\x00" + self.key.encode()
        ).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A rendered response: what the first request answered and every replay repeats."""

    status: int
    body: bytes
    content_type: str = "application/json"
    replayed: bool = False


def _try_lock(lock_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        return bool(cursor.fetchone()[0])


@records_limit_breaches
def idempotent_execute(
    *,
    claim: IdempotencyClaim,
    operation: Callable[[], T],
    render: Callable[[T], StoredResponse],
    now: datetime,
) -> StoredResponse:
    """Run ``operation`` once per (client, key) and return its rendered response, or the replay.

    Owns the durable transaction: ``operation`` must be a building block that requires its
    caller's transaction (``movement_post``, ``journal_reverse_post``...), and ``render`` runs
    inside it too, so the stored bytes describe exactly what committed.

    :raises IdempotencyInFlight: if a request with the same key is still running
    :raises IdempotencyKeyReused: if the key already answered a different request
    :raises DomainError: whatever ``operation`` raises; nothing is committed, key included
    """
    with transaction.atomic(durable=True):
        # Not waiting is the point: a retry racing the original must not queue behind its
        # row locks and then replay; it is told to come back (409) and the original finishes.
        if not _try_lock(claim.lock_id):
            raise IdempotencyInFlight(
                "a request with this Idempotency-Key is in progress; retry it shortly"
            )
        # Read after the lock: in READ COMMITTED this statement sees any record that the
        # previous holder of the lock committed before releasing it.
        record = IdempotencyRecord.objects.filter(client_id=claim.client_id, key=claim.key).first()
        if record is not None and record.expires_at <= now:
            # Past its TTL the key is free again; the hourly purge may not have run yet.
            record.delete()
            record = None
        if record is not None:
            if record.request_hash != claim.request_hash:
                raise IdempotencyKeyReused(
                    f"this Idempotency-Key was used for {record.method} {record.path} "
                    "with another body; use a new key for a new request"
                )
            return StoredResponse(
                status=record.response_status,
                body=bytes(record.response_body),
                content_type=record.response_content_type,
                replayed=True,
            )
        response = render(operation())
        try:
            # A savepoint, so a lost race on the unique constraint is reported as one.
            with transaction.atomic():
                IdempotencyRecord.objects.create(
                    client_id=claim.client_id,
                    key=claim.key,
                    request_hash=claim.request_hash,
                    method=claim.method,
                    path=claim.path[:255],
                    response_status=response.status,
                    response_body=response.body,
                    response_content_type=response.content_type,
                    created_at=now,
                    expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
                )
        except IntegrityError as exc:
            # Only reachable if the advisory lock was bypassed; the unique constraint holds
            # the line and the whole posting rolls back with this error.
            raise IdempotencyInFlight("a request with this Idempotency-Key is in progress") from exc
        return response
