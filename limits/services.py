"""Writes of the limits app: rule maintenance, and consuming / releasing daily usage.

``limit_consume`` runs on every limited debit, inside the posting transaction, as ONE call of
the ``limits_consume`` SQL function (rule selection, check and increment of every applicable
rule). PostgreSQL is the only source of truth for usage; nothing is cached. Callers take the
limit locks before the ledger's balance locks (``limit_consume`` / ``limit_release`` before
``journal_post``) so the two never wait on each other in opposite orders.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum
from typing import Any, ParamSpec, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction

from accounts.models import Account, Customer, Product
from accounts.services import AccountNotFound, CustomerNotFound, ProductNotFound
from audit.services import audit_record
from banksim.core.money import Money, currency_exponent
from ledger.models import Journal
from limits.errors import (
    DailyLimitExceeded,
    LimitConsumptionInvalid,
    LimitCurrencyMismatch,
    LimitOfficeScope,
    LimitRuleInvalid,
    LimitRuleNotFound,
    LimitRuleWithoutLimit,
    LimitScopeAmbiguous,
)
from limits.models import LIMITED_TXN_TYPES, LimitRule
from outbox import events as outbox_events
from outbox.services import outbox_enqueue

# Bounds that keep a limit inside the columns (bigint minor units, integer counts) with room
# for a day's usage to be added to it.
MAX_LIMIT_MINOR = 10**15
MAX_LIMIT_COUNT = 1_000_000

logger = logging.getLogger("banksim.limits")
P = ParamSpec("P")
T = TypeVar("T")


class Unset(Enum):
    UNSET = "unset"


UNSET = Unset.UNSET


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitRuleSpec:
    """What a rule says. At most one of ``account_id``, ``product_id``, ``customer_id``."""

    currency: str
    max_amount: Money | None = None
    max_count: int | None = None
    on_breach: str = LimitRule.OnBreach.REFUSE
    channel: str = ""
    txn_type: str = ""
    account_id: int | None = None
    product_id: int | None = None
    customer_id: int | None = None
    name: str = ""
    is_active: bool = True


@dataclass(frozen=True)
class LimitRuleChanges:
    """The fields a rule may change after creation; scope, currency and filters may not."""

    name: str | Unset = UNSET
    max_amount: Money | Unset | None = UNSET
    max_count: int | Unset | None = UNSET
    on_breach: str | Unset = UNSET
    is_active: bool | Unset = UNSET


def _check_values(spec: LimitRuleSpec) -> None:
    """Check everything a rule says that needs no query."""
    scopes = {
        name: value
        for name, value in (
            ("account", spec.account_id),
            ("product", spec.product_id),
            ("customer", spec.customer_id),
        )
        if value is not None
    }
    if len(scopes) > 1:
        raise LimitScopeAmbiguous(
            f"set one of account, product or customer, not {', '.join(scopes)}",
            errors={name: ["only one scope may be set"] for name in scopes},
        )
    currency_exponent(spec.currency)
    errors: dict[str, list[str]] = {}
    if spec.channel not in ("", *Journal.Channel.values):
        errors["channel"] = [f"one of {', '.join(Journal.Channel.values)}, or '' for any"]
    if spec.txn_type not in ("", *LIMITED_TXN_TYPES):
        errors["txn_type"] = [f"one of {', '.join(LIMITED_TXN_TYPES)}, or '' for any"]
    if spec.on_breach not in LimitRule.OnBreach.values:
        errors["on_breach"] = [f"one of {', '.join(LimitRule.OnBreach.values)}"]
    if len(spec.name) > 100:
        errors["name"] = ["at most 100 characters"]
    if spec.max_amount is not None:
        if spec.max_amount.currency != spec.currency:
            raise LimitCurrencyMismatch(
                f"the limit is in {spec.max_amount.currency}, the rule in {spec.currency}",
                errors={"max_amount": [f"must be in {spec.currency}"]},
            )
        if not spec.max_amount.is_positive():
            errors["max_amount"] = ["must be greater than zero"]
        elif spec.max_amount.minor > MAX_LIMIT_MINOR:
            errors["max_amount"] = [f"at most {Money.from_minor(MAX_LIMIT_MINOR, spec.currency)}"]
    if spec.max_count is not None and (
        not isinstance(spec.max_count, int)
        or isinstance(spec.max_count, bool)
        or not 1 <= spec.max_count <= MAX_LIMIT_COUNT
    ):
        errors["max_count"] = [f"a whole number from 1 to {MAX_LIMIT_COUNT}"]
    if errors:
        raise LimitRuleInvalid("; ".join(f"{k}: {v[0]}" for k, v in errors.items()), errors=errors)
    if spec.max_amount is None and spec.max_count is None:
        raise LimitRuleWithoutLimit(
            "set max_amount, max_count or both",
            errors={"max_amount": ["set this or max_count"], "max_count": ["or this"]},
        )


def _check_scope(spec: LimitRuleSpec) -> None:
    """Check that the scope object exists, is a customer's, and is in the rule's currency."""
    if spec.account_id is not None:
        account = Account.objects.filter(pk=spec.account_id).only("kind", "currency").first()
        if account is None:
            raise AccountNotFound(f"no account with id {spec.account_id}")
        if account.kind != Account.Kind.CUSTOMER:
            raise LimitOfficeScope("office (GL) accounts are never limited")
        scope_currency = account.currency
    elif spec.product_id is not None:
        product = Product.objects.filter(pk=spec.product_id).only("scheme_type", "currency").first()
        if product is None:
            raise ProductNotFound(f"no product with id {spec.product_id}")
        if product.scheme_type == Product.SchemeType.OFFICE:
            raise LimitOfficeScope("office products hold no customer accounts to limit")
        scope_currency = product.currency
    elif spec.customer_id is not None:
        if not Customer.objects.filter(pk=spec.customer_id).exists():
            raise CustomerNotFound(f"no customer with id {spec.customer_id}")
        return
    else:
        return
    if scope_currency != spec.currency:
        raise LimitCurrencyMismatch(
            f"the rule is in {spec.currency}, its scope in {scope_currency}",
            errors={"currency": [f"must be {scope_currency}"]},
        )


def limit_rule_check(*, spec: LimitRuleSpec) -> None:
    """Validate a rule without saving it (the admin form shows these errors field by field).

    :raises LimitScopeAmbiguous: / :raises LimitRuleInvalid: / :raises LimitRuleWithoutLimit:
    :raises LimitCurrencyMismatch: / :raises UnknownCurrency: / :raises LimitOfficeScope:
    :raises AccountNotFound: / :raises ProductNotFound: / :raises CustomerNotFound:
    """
    _check_values(spec)
    _check_scope(spec)


def _apply(rule: LimitRule, spec: LimitRuleSpec) -> None:
    rule.name = spec.name
    rule.account_id = spec.account_id
    rule.product_id = spec.product_id
    rule.customer_id = spec.customer_id
    rule.channel = spec.channel
    rule.txn_type = spec.txn_type
    rule.currency = spec.currency
    rule.max_amount_minor = spec.max_amount.minor if spec.max_amount is not None else None
    rule.max_count = spec.max_count
    rule.on_breach = spec.on_breach
    rule.is_active = spec.is_active


def _spec_of(rule: LimitRule) -> LimitRuleSpec:
    return LimitRuleSpec(
        currency=rule.currency,
        max_amount=(
            Money.from_minor(rule.max_amount_minor, rule.currency)
            if rule.max_amount_minor is not None
            else None
        ),
        max_count=rule.max_count,
        on_breach=rule.on_breach,
        channel=rule.channel,
        txn_type=rule.txn_type,
        account_id=rule.account_id,
        product_id=rule.product_id,
        customer_id=rule.customer_id,
        name=rule.name,
        is_active=rule.is_active,
    )


def limit_rule_spec_changed(*, rule: LimitRule, changes: LimitRuleChanges) -> LimitRuleSpec:
    """Return what ``rule`` would say after ``changes`` (nothing saved, nothing checked)."""
    values = {k: v for k, v in vars(changes).items() if v is not UNSET}
    return replace(_spec_of(rule), **values)


def limit_rule_create(
    *, spec: LimitRuleSpec, actor: AbstractBaseUser | None, now: datetime
) -> LimitRule:
    """Create a limit rule (never an override: see ``limit_override_set``).

    :raises: everything ``limit_rule_check`` raises; nothing is saved then
    """
    limit_rule_check(spec=spec)
    rule = LimitRule(created_at=now, updated_at=now, created_by=actor)
    _apply(rule, spec)
    rule._history_user = actor  # type: ignore[attr-defined]
    with transaction.atomic():
        rule.save()
        audit_record(
            action="limit_rule.created", object_type="limit_rule", object_id=rule.pk, actor=actor
        )
    return rule


def limit_rule_update(
    *, rule_id: int, changes: LimitRuleChanges, actor: AbstractBaseUser | None, now: datetime
) -> LimitRule:
    """Change a rule's limits, breach action, name or active flag (kept in its history).

    Usage already counted today stays: a raised limit gives the difference as headroom.

    :raises LimitRuleNotFound: / :raises LimitRuleInvalid: / :raises LimitRuleWithoutLimit:
    :raises LimitCurrencyMismatch: if a new amount is not in the rule's currency
    """
    with transaction.atomic():
        rule = (
            LimitRule.objects.select_for_update().filter(pk=rule_id).first()
            if 0 < rule_id < 2**63
            else None
        )
        if rule is None:
            raise LimitRuleNotFound(f"no limit rule {rule_id}")
        spec = limit_rule_spec_changed(rule=rule, changes=changes)
        _check_values(spec)
        _apply(rule, spec)
        rule.updated_at = now
        rule._history_user = actor  # type: ignore[attr-defined]
        rule.save()
        audit_record(
            action="limit_rule.changed", object_type="limit_rule", object_id=rule.pk, actor=actor
        )
    return rule


def limit_override_set(
    *,
    account_id: int,
    max_amount: Money | None,
    max_count: int | None,
    on_breach: str,
    channel: str,
    txn_type: str,
    name: str,
    actor: AbstractBaseUser | None,
    now: datetime,
) -> tuple[LimitRule, bool]:
    """Set or replace a customer account's override; return (rule, created).

    An account has one override row; setting it again changes that row (its history keeps
    every version) and re-activates it. Usage counted on it today stays.

    :raises AccountNotFound: / :raises LimitOfficeScope: for an office account
    :raises LimitRuleInvalid: / :raises LimitRuleWithoutLimit: / :raises LimitCurrencyMismatch:
    """
    account = Account.objects.filter(pk=account_id).only("currency").first()
    if account is None:
        raise AccountNotFound(f"no account with id {account_id}")
    spec = LimitRuleSpec(
        currency=account.currency,
        max_amount=max_amount,
        max_count=max_count,
        on_breach=on_breach,
        channel=channel,
        txn_type=txn_type,
        account_id=account_id,
        name=name,
    )
    limit_rule_check(spec=spec)
    with transaction.atomic():
        rule = _locked_override(account_id)
        if rule is None:
            try:
                with transaction.atomic():
                    rule = LimitRule(
                        is_override=True, created_at=now, updated_at=now, created_by=actor
                    )
                    _apply(rule, spec)
                    rule._history_user = actor  # type: ignore[attr-defined]
                    rule.save()
                    audit_record(
                        action="limit_override.set",
                        object_type="limit_rule",
                        object_id=rule.pk,
                        details={"account_id": account_id, "created": True},
                        actor=actor,
                    )
                    return rule, True
            except IntegrityError:  # a concurrent call created it first: replace theirs
                rule = _locked_override(account_id)
        assert rule is not None
        _apply(rule, spec)
        rule.updated_at = now
        rule._history_user = actor  # type: ignore[attr-defined]
        rule.save()
        audit_record(
            action="limit_override.set",
            object_type="limit_rule",
            object_id=rule.pk,
            details={"account_id": account_id, "created": False},
            actor=actor,
        )
    return rule, False


def _locked_override(account_id: int) -> LimitRule | None:
    return (
        LimitRule.objects.select_for_update()
        .filter(account_id=account_id, is_override=True)
        .first()
    )


# --- consumption -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitDecision:
    # A breached rule routes the movement to maker-checker; nothing was consumed.
    requires_approval: bool
    # [{rule_id, subject_id, amount_minor}]: keep it (Journal.details["limits"]) so that a
    # reversal or a rejection releases exactly this.
    consumed: list[dict[str, int]] = field(default_factory=list)
    # The rule that routed the movement to approval (the limit.breached event names it).
    breached_rule_id: int | None = None


_CONSUME_SQL = (
    "SELECT rule_id, subject_id, on_breach, max_amount_minor, max_count, used_amount_minor, "
    "used_count, consumed FROM limits_consume(%s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class _RuleState:
    rule_id: int
    subject_id: int
    on_breach: str
    max_amount_minor: int | None
    max_count: int | None
    used_amount_minor: int
    used_count: int
    consumed: bool

    def fits(self, amount_minor: int) -> bool:
        return (
            self.max_amount_minor is None
            or self.used_amount_minor + amount_minor <= self.max_amount_minor
        ) and (self.max_count is None or self.used_count + 1 <= self.max_count)


def limit_consume(
    *,
    account_id: int,
    amount: Money,
    channel: str,
    txn_type: str,
    business_date: date,
    enforce: bool = True,
) -> LimitDecision:
    """Count a debit against every daily limit that applies to it, or refuse it.

    Requires the caller's transaction; holds the usage rows' locks until it ends. Only debits
    of customer accounts by ``transfer`` and ``cash_withdrawal`` are limited; anything else
    returns an empty decision without a query. One database round trip otherwise.
    ``enforce=False`` records the debit without checking (an item a checker approved despite
    a limit that routed it to approval).

    :raises DailyLimitExceeded: if a rule whose breach refuses has no room; nothing consumed
    :raises LimitConsumptionInvalid: if the amount is not positive
    """
    assert connection.in_atomic_block, "limit_consume requires the caller's transaction"
    if txn_type not in LIMITED_TXN_TYPES:
        return LimitDecision(requires_approval=False, consumed=[])
    if not amount.is_positive():
        raise LimitConsumptionInvalid("only a positive debit consumes a limit")
    with connection.cursor() as cursor:
        cursor.execute(
            _CONSUME_SQL,
            [account_id, amount.currency, amount.minor, channel, txn_type, business_date, enforce],
        )
        states = [_RuleState(*row) for row in cursor.fetchall()]
    if all(state.consumed for state in states):
        return LimitDecision(
            requires_approval=False,
            consumed=[
                {"rule_id": s.rule_id, "subject_id": s.subject_id, "amount_minor": amount.minor}
                for s in states
            ],
        )
    # Nothing was consumed. The usage read back is the locked, current one: name the breach.
    breached = [s for s in states if not s.fits(amount.minor)] or states
    refusing = [s for s in breached if s.on_breach == LimitRule.OnBreach.REFUSE]
    if refusing:
        error = _exceeded(refusing[0], amount)
        error.breach = LimitBreach(
            account_id=account_id,
            rule_id=refusing[0].rule_id,
            txn_type=txn_type,
            channel=channel,
            amount=amount,
            business_date=business_date,
        )
        raise error
    return LimitDecision(requires_approval=True, consumed=[], breached_rule_id=breached[0].rule_id)


@dataclass(frozen=True)
class LimitBreach:
    """The debit a ``DailyLimitExceeded`` refused (its transaction rolled back with it)."""

    account_id: int
    rule_id: int
    txn_type: str
    channel: str
    amount: Money
    business_date: date


def limit_breach_record(*, error: DailyLimitExceeded, now: datetime) -> None:
    """Record the ``limit.breached`` event of a refused debit, in its own short transaction.

    The refusal rolled the posting back, and the event with it; this writes it again once the
    rollback is done. A failure here is logged, never raised over the refusal itself.
    """
    breach = error.breach
    if not isinstance(breach, LimitBreach):
        return
    try:
        with transaction.atomic(durable=True):
            outbox_enqueue(
                event=outbox_events.limit_breached(
                    account_number=Account.objects.values_list("account_number", flat=True).get(
                        pk=breach.account_id
                    ),
                    account_id=breach.account_id,
                    rule_id=breach.rule_id,
                    action="refused",
                    txn_type=breach.txn_type,
                    channel=breach.channel,
                    requested=breach.amount,
                    limit_extra=error.extra or {},
                    business_date=breach.business_date,
                    now=now,
                )
            )
    except Exception:
        logger.exception("limit.breached event of account %s not recorded", breach.account_id)


def records_limit_breaches(use_case: Callable[P, T]) -> Callable[P, T]:
    """Decorate a use case that owns its transaction and takes ``now``: a debit refused by a
    daily limit leaves a ``limit.breached`` event although everything else rolled back."""

    @functools.wraps(use_case)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return use_case(*args, **kwargs)
        except DailyLimitExceeded as exc:
            limit_breach_record(error=exc, now=kwargs["now"])  # type: ignore[arg-type]
            raise

    return wrapper


def _exceeded(state: _RuleState, amount: Money) -> DailyLimitExceeded:
    currency = amount.currency

    def wire(minor: int | None) -> str | None:
        return None if minor is None else Money.from_minor(minor, currency).to_wire()

    remaining_minor = (
        None
        if state.max_amount_minor is None
        else max(state.max_amount_minor - state.used_amount_minor, 0)
    )
    remaining_count = (
        None if state.max_count is None else max(state.max_count - state.used_count, 0)
    )
    if state.max_amount_minor is not None and (
        state.used_amount_minor + amount.minor > state.max_amount_minor
    ):
        detail = (
            f"a debit of {amount} would pass the daily limit of {wire(state.max_amount_minor)} "
            f"{currency}: {wire(state.used_amount_minor)} used, {wire(remaining_minor)} remaining"
        )
    else:
        detail = (
            f"the daily limit of {state.max_count} debits is reached "
            f"({state.used_count} used, {remaining_count} remaining)"
        )
    extra: dict[str, Any] = {
        "rule_id": state.rule_id,
        "currency": currency,
        "requested_amount": amount.to_wire(),
        "limit_amount": wire(state.max_amount_minor),
        "used_amount": wire(state.used_amount_minor),
        "remaining_amount": wire(remaining_minor),
        "limit_count": state.max_count,
        "used_count": state.used_count,
        "remaining_count": remaining_count,
    }
    return DailyLimitExceeded(detail, extra=extra)


_RELEASE_SQL = """
WITH released AS (
    SELECT c.rule_id, c.subject_id, c.amount_minor
      FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS c(rule_id, subject_id, amount_minor)
), locked AS (
    SELECT u.id, c.amount_minor
      FROM limits_limitusage u
      JOIN released c ON c.rule_id = u.rule_id AND c.subject_id = u.subject_id
      JOIN limits_limitrule r ON r.id = u.rule_id AND r.currency = %s
     WHERE u.business_date = %s
     ORDER BY u.rule_id, u.subject_id
       FOR UPDATE OF u
)
UPDATE limits_limitusage u
   SET used_amount_minor = GREATEST(u.used_amount_minor - l.amount_minor, 0),
       used_count = GREATEST(u.used_count - 1, 0)
  FROM locked l
 WHERE u.id = l.id
"""


def limit_release(
    *, consumed: list[dict[str, int]], amount_currency: str, business_date_of_original: date
) -> None:
    """Give back what ``limit_consume`` took (reversal, rejected maker-checker item).

    Requires the caller's transaction. Usage of the original's business date is reduced, never
    below zero; a release of a past day changes nothing about today's headroom. One statement.

    :raises LimitConsumptionInvalid: if ``consumed`` is not what ``limit_consume`` returned
    """
    assert connection.in_atomic_block, "limit_release requires the caller's transaction"
    if not consumed:
        return
    try:
        rows = [(int(c["rule_id"]), int(c["subject_id"]), int(c["amount_minor"])) for c in consumed]
    except (KeyError, TypeError, ValueError) as exc:
        raise LimitConsumptionInvalid(
            "each item needs integer rule_id, subject_id and amount_minor"
        ) from exc
    if any(amount <= 0 for _, _, amount in rows):
        raise LimitConsumptionInvalid("released amounts are positive")
    currency_exponent(amount_currency)
    with connection.cursor() as cursor:
        cursor.execute(
            _RELEASE_SQL,
            [
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                amount_currency,
                business_date_of_original,
            ],
        )
