"""The ledger's domain errors; codes are the API contract (docs/api-errors.md)."""

from __future__ import annotations

from banksim.core.errors import BusinessRuleViolation, Conflict, Forbidden, InvalidInput, NotFound


class InsufficientFunds(BusinessRuleViolation):
    code = "ledger.insufficient_funds"
    title = "Insufficient funds"


class AccountClosed(BusinessRuleViolation):
    code = "account.closed"
    title = "Account is closed"


class AccountFrozen(BusinessRuleViolation):
    code = "account.frozen"
    title = "Account is frozen"


class AccountDormant(BusinessRuleViolation):
    code = "account.dormant"
    title = "Account is dormant"


class AccountNotFound(NotFound):
    code = "account.not_found"
    title = "Account not found"


class LedgerCurrencyMismatch(InvalidInput):
    code = "ledger.currency_mismatch"
    title = "Currency differs from the account's"


class SameAccount(InvalidInput):
    code = "ledger.same_account"
    title = "Debit and credit account are the same"


class MalformedLegs(InvalidInput):
    code = "ledger.malformed_legs"
    title = "Malformed posting"


class NotAnOfficeAccount(BusinessRuleViolation):
    code = "ledger.not_office_account"
    title = "Adjustments move money between office (GL) accounts only"


class JournalNotFound(NotFound):
    code = "ledger.transaction_not_found"
    title = "Transaction not found"


class JournalNotPending(Conflict):
    code = "ledger.transaction_not_pending"
    title = "Transaction is not awaiting approval"


class AlreadyReversed(Conflict):
    code = "ledger.already_reversed"
    title = "Transaction already reversed"


class NotReversible(BusinessRuleViolation):
    code = "ledger.not_reversible"
    title = "Transaction cannot be reversed"


class SelfApproval(Forbidden):
    code = "ledger.self_approval"
    title = "A maker cannot approve their own transaction"


class HoldNotFound(NotFound):
    code = "ledger.hold_not_found"
    title = "Hold not found"


class HoldNotActive(Conflict):
    code = "ledger.hold_not_active"
    title = "Hold is not active"


class InvalidExpiry(InvalidInput):
    code = "ledger.invalid_expiry"
    title = "Expiry date must be after the business date"


class UnbalancedJournal(BusinessRuleViolation):
    code = "ledger.unbalanced_journal"
    title = "Journal does not balance"


# --- idempotency (ledger.idempotency) ----------------------------------------------------------


class IdempotencyKeyMissing(InvalidInput):
    code = "idempotency.key_missing"
    title = "Idempotency-Key header required"


class IdempotencyKeyInvalid(InvalidInput):
    code = "idempotency.key_invalid"
    title = "Idempotency-Key header is malformed"


class IdempotencyInFlight(Conflict):
    code = "idempotency.in_flight"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyReused(BusinessRuleViolation):
    code = "idempotency.key_reused"
    title = "Idempotency-Key was already used for a different request"


class DayNotOpen(Conflict):
    """Teller and API postings wait while end of day runs (409: retry once the day opens)."""

    code = "eod.day_not_open"
    title = "The business day is not open"


# Codes the posting function raises, mapped to their exception classes.
BY_CODE: dict[str, type[Exception]] = {
    cls.code: cls
    for cls in (
        InsufficientFunds,
        AccountClosed,
        AccountFrozen,
        AccountDormant,
        AccountNotFound,
        LedgerCurrencyMismatch,
        MalformedLegs,
        JournalNotPending,
        UnbalancedJournal,
    )
}
# The SQL function names this condition after its table; the API contract after the resource.
BY_CODE["ledger.journal_not_pending"] = JournalNotPending
