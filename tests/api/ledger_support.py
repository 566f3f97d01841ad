"""Helpers for the ledger API tests: seating staff, idempotent POSTs, and "nothing was written"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.models import Branch, StaffProfile
from ledger.models import Entry, Hold, IdempotencyRecord, Journal
from tests.api.accounts_support import PROBLEM, assert_problem

__all__ = [
    "PROBLEM",
    "LedgerRows",
    "assert_problem",
    "new_key",
    "post_json",
    "seat",
]


def seat(user: User, branch: Branch) -> StaffProfile:
    """Seat a staff user at a branch: their cash then goes through its teller-cash account."""
    profile, _ = StaffProfile.objects.get_or_create(user=user, defaults={"branch": branch})
    return profile


def new_key() -> str:
    return str(uuid.uuid4())


def post_json(client: APIClient, path: str, body: Any = None, *, key: str | None = "new") -> Any:
    """POST ``body`` as JSON with an Idempotency-Key (a fresh one unless given; None: no header)."""
    headers = {}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = new_key() if key == "new" else key
    return client.post(path, body if body is not None else {}, format="json", **headers)


@dataclass(frozen=True)
class LedgerRows:
    """How many journals, entries, holds and idempotency records exist: compare before/after."""

    journals: int
    entries: int
    holds: int
    idempotency_records: int

    @classmethod
    def now(cls) -> LedgerRows:
        return cls(
            journals=Journal.objects.count(),
            entries=Entry.objects.count(),
            holds=Hold.objects.count(),
            idempotency_records=IdempotencyRecord.objects.count(),
        )
