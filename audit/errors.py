"""Errors of the audit read API (codes listed in docs/api-errors.md, "Audit")."""

from __future__ import annotations

from banksim.core.errors import NotFound


class HistoryModelUnknown(NotFound):
    code = "audit.history_model_unknown"
    title = "No history for this kind of object"


class HistoryNotFound(NotFound):
    code = "audit.history_not_found"
    title = "No history for this object"
