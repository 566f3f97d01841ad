"""The limits app's domain errors; codes are the API contract (docs/api-errors.md)."""

from __future__ import annotations

from typing import Any

from banksim.core.errors import BusinessRuleViolation, InvalidInput, NotFound


class DailyLimitExceeded(BusinessRuleViolation):
    """A debit would pass a daily limit whose breach refuses the movement.

    ``extra`` carries the limit, what is used and what remains (amounts as strings in the
    rule's currency, counts as integers; null where the rule has no such limit).
    ``breach`` (a ``limits.services.LimitBreach``) says which debit it refused, for the
    ``limit.breached`` event recorded after the rollback.
    """

    breach: Any = None

    code = "limits.daily_limit_exceeded"
    title = "Daily limit exceeded"


class LimitRuleNotFound(NotFound):
    code = "limits.rule_not_found"
    title = "Limit rule not found"


class LimitRuleInvalid(InvalidInput):
    """A field of a rule is out of its domain; ``errors`` names the field."""

    code = "limits.rule_invalid"
    title = "Invalid limit rule"


class LimitRuleWithoutLimit(InvalidInput):
    code = "limits.rule_without_limit"
    title = "A limit rule needs an amount limit, a count limit or both"


class LimitScopeAmbiguous(InvalidInput):
    code = "limits.scope_ambiguous"
    title = "A limit rule applies to one account, product or customer, not several"


class LimitCurrencyMismatch(InvalidInput):
    code = "limits.currency_mismatch"
    title = "Currency differs from the account's or product's"


class LimitOfficeScope(BusinessRuleViolation):
    code = "limits.office_scope"
    title = "Office (GL) accounts and products are never limited"


class LimitConsumptionInvalid(InvalidInput):
    code = "limits.consumption_invalid"
    title = "Invalid limit consumption"
