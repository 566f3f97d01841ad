"""The fee engine's domain errors; codes are the API contract (docs/api-errors.md, "Fees").

Pure: no Django imports, so the calculators that raise them stay testable without a database.
"""

from __future__ import annotations

from banksim.core.errors import Conflict, InvalidInput, NotFound


class UnknownEvent(InvalidInput):
    code = "fees.unknown_event"
    title = "Unknown fee event"


class NegativeRate(InvalidInput):
    code = "fees.negative_rate"
    title = "Rates cannot be negative"


class InvalidRate(InvalidInput):
    code = "fees.invalid_rate"
    title = "Not a percentage rate"


class RateTooHigh(InvalidInput):
    code = "fees.rate_too_high"
    title = "Rates cannot exceed 100 percent"


class NegativeAmount(InvalidInput):
    code = "fees.negative_amount"
    title = "Fee amounts cannot be negative"


class InvalidCaps(InvalidInput):
    code = "fees.invalid_caps"
    title = "Minimum fee exceeds maximum fee"


class InvalidTiers(InvalidInput):
    code = "fees.invalid_tiers"
    title = "Invalid fee tiers"


class InvalidCalculation(InvalidInput):
    code = "fees.invalid_calculation"
    title = "Calculation settings do not fit the calculation type"


class InvalidPeriod(InvalidInput):
    code = "fees.invalid_period"
    title = "The period ends before it starts"


class InvalidScope(InvalidInput):
    code = "fees.invalid_scope"
    title = "Invalid rule scope"


class InvalidGlAccount(InvalidInput):
    code = "fees.invalid_gl_account"
    title = "Not an office (GL) account of the rule's currency"


class TaxAccountRequired(InvalidInput):
    code = "fees.tax_account_required"
    title = "A tax rate needs a tax account"


class ImmutableField(InvalidInput):
    code = "fees.immutable_field"
    title = "Field cannot be changed"


class InvalidWaiver(InvalidInput):
    code = "fees.invalid_waiver"
    title = "Invalid waiver"


class OverlappingRule(Conflict):
    code = "fees.overlapping_rule"
    title = "Another rule covers the same scope in an overlapping period"


class FeeRuleNotFound(NotFound):
    code = "fees.rule_not_found"
    title = "Fee rule not found"
