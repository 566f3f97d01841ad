"""Domain errors of standing instructions; codes are the API contract (docs/api-errors.md)."""

from __future__ import annotations

from banksim.core.errors import BusinessRuleViolation, Conflict, InvalidInput, NotFound


class InstructionNotFound(NotFound):
    code = "instructions.not_found"
    title = "Standing instruction not found"


class InstructionAccountNotFound(NotFound):
    code = "instructions.account_not_found"
    title = "Account of the standing instruction not found"


class InstructionSameAccount(InvalidInput):
    code = "instructions.same_account"
    title = "Debit and credit account are the same"


class InstructionCurrencyMismatch(InvalidInput):
    code = "instructions.currency_mismatch"
    title = "Currency differs from the accounts'"


class InstructionAmountInvalid(InvalidInput):
    code = "instructions.amount_invalid"
    title = "Amount must be positive"


class InstructionDateInvalid(InvalidInput):
    code = "instructions.date_invalid"
    title = "Invalid schedule dates"


class InstructionAccountNotEligible(BusinessRuleViolation):
    code = "instructions.account_not_eligible"
    title = "Account cannot take part in a standing instruction"


class InstructionNotActive(Conflict):
    code = "instructions.not_active"
    title = "Standing instruction is not active"
