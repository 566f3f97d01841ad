"""Reads for auditors and supervisors: the audit log, filtered, and model history.

History rows are django-simple-history's tables of the other apps; the audit app reads them
(never writes) through the ``history`` manager each tracked model declares. An object is
looked up in its history by its business key (CIF id, account number, product code, or the
row id), so the history of a row that was since deleted can still be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import QuerySet

from accounts.models import Account, Customer, Product, ProductTerms
from audit.errors import HistoryModelUnknown, HistoryNotFound
from audit.models import AuditLog
from audit.services import json_ready
from fees.models import FeeRule, FeeWaiver
from ledger.models import ApprovalThreshold, Hold
from limits.models import LimitRule

_ID = re.compile(r"[1-9][0-9]{0,17}", re.ASCII)


@dataclass(frozen=True, slots=True)
class HistoryTarget:
    model: type[models.Model]
    key_field: str  # how the URL names one object
    key_pattern: re.Pattern[str]


HISTORY_MODELS: dict[str, HistoryTarget] = {
    "customer": HistoryTarget(Customer, "cif_id", re.compile(r"[A-Z][0-9]{9}", re.ASCII)),
    "account": HistoryTarget(Account, "account_number", re.compile(r"[0-9]{12}", re.ASCII)),
    "product": HistoryTarget(Product, "code", re.compile(r"[A-Z0-9][A-Z0-9-]{0,11}", re.ASCII)),
    "product_terms": HistoryTarget(ProductTerms, "id", _ID),
    "fee_rule": HistoryTarget(FeeRule, "id", _ID),
    "fee_waiver": HistoryTarget(FeeWaiver, "id", _ID),
    "limit_rule": HistoryTarget(LimitRule, "id", _ID),
    "hold": HistoryTarget(Hold, "id", _ID),
    "approval_threshold": HistoryTarget(ApprovalThreshold, "id", _ID),
}


def audit_log_list(
    *,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    outcome: str = "",
    error_code: str = "",
    kind: str = "",
    request_id: str = "",
    at_from: datetime | None = None,
    at_before: datetime | None = None,
) -> QuerySet[AuditLog]:
    """Audit rows matching every given filter, newest first.

    ``action`` ending in ``*`` is a prefix (``transaction.*``); ``at_from`` is inclusive and
    ``at_before`` exclusive.
    """
    rows = AuditLog.objects.all()
    if actor:
        rows = rows.filter(actor=actor)
    if action.endswith("*"):
        rows = rows.filter(action__startswith=action[:-1])
    elif action:
        rows = rows.filter(action=action)
    if object_type:
        rows = rows.filter(object_type=object_type)
    if object_id:
        rows = rows.filter(object_id=object_id)
    if outcome:
        rows = rows.filter(outcome=outcome)
    if error_code:
        rows = rows.filter(error_code=error_code)
    if kind:
        rows = rows.filter(kind=kind)
    if request_id:
        rows = rows.filter(request_id=request_id)
    if at_from is not None:
        rows = rows.filter(at__gte=at_from)
    if at_before is not None:
        rows = rows.filter(at__lt=at_before)
    return rows.order_by("-id")


# --- history ---------------------------------------------------------------------------------

_HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass(frozen=True, slots=True)
class HistoryVersion:
    history_id: int
    at: datetime
    type: str
    user: str | None
    change_reason: str
    values: dict[str, Any]
    changes: list[dict[str, Any]]


def _values(target: HistoryTarget, row: models.Model) -> dict[str, Any]:
    return {
        field.attname: json_ready(getattr(row, field.attname))
        for field in target.model._meta.concrete_fields
    }


def history_target(*, model: str) -> HistoryTarget:
    """:raises HistoryModelUnknown: for a model without history (or unknown)"""
    target = HISTORY_MODELS.get(model)
    if target is None:
        raise HistoryModelUnknown(
            f"history is kept for {', '.join(sorted(HISTORY_MODELS))}; not for {model[:40]!r}"
        )
    return target


def history_list(
    *, model: str, object_key: str, limit: int, offset: int
) -> tuple[int, list[HistoryVersion]]:
    """Return (number of versions, one page of versions newest first) of one object.

    Each version lists the fields that changed against the version before it.

    :raises HistoryModelUnknown: / :raises HistoryNotFound: if the object has no history
    """
    target = history_target(model=model)
    if not target.key_pattern.fullmatch(object_key):
        raise HistoryNotFound(f"no {model} {object_key[:40]!r}")
    manager = target.model.history  # type: ignore[attr-defined]
    rows = manager.filter(**{target.key_field: object_key}).order_by("-history_date", "-history_id")
    count = rows.count()
    if count == 0:
        raise HistoryNotFound(f"no {model} {object_key[:40]!r}")
    # One more than the page: the version before the page's oldest, to diff against.
    window = list(rows.select_related("history_user")[offset : offset + limit + 1])
    versions = []
    for index, row in enumerate(window[:limit]):
        values = _values(target, row)
        before = _values(target, window[index + 1]) if index + 1 < len(window) else None
        changes = (
            [
                {"field": name, "old": before[name], "new": value}
                for name, value in values.items()
                if before[name] != value
            ]
            if before is not None
            else []
        )
        user = row.history_user
        versions.append(
            HistoryVersion(
                history_id=row.history_id,
                at=row.history_date,
                type=_HISTORY_TYPES.get(row.history_type, row.history_type),
                user=user.get_username() if user is not None else None,
                change_reason=row.history_change_reason or "",
                values=values,
                changes=changes,
            )
        )
    return count, versions
