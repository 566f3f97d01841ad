"""Domain error categories.

Every domain exception subclasses one of these and carries a stable ``code`` (part of the API
contract, listed in docs/api-errors.md). The DRF exception handler in ``banksim.api.exceptions``
is the only place that turns them into HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "error"
    title: str = "Request failed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = errors or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class BusinessRuleViolation(DomainError):
    status = 422
    code = "business_rule_violation"
    title = "Business rule violated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
