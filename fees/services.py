"""Writes of the fee engine: rules and waivers, and the assessment the posting path calls.

``fee_assess`` is the single code path for both a real posting (``count_usage=True``: counts
the use of a free-first-N rule, inside the posting's transaction) and a quote
(``count_usage=False``: reads the count, writes nothing), so a quote is what the posting would
charge. It costs one query, plus one upsert when the winning rule has free uses and the call
is a real posting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction

from accounts.models import Account, Customer, Product
from accounts.services import ProductNotFound
from audit.services import audit_record
from banksim.core.money import Money, currency_exponent
from fees.assessment import FeeAssessment, FeeCharge, UsageKey
from fees.calculators import PERIODS, fee_compute, period_start, relieved, schedule_validate
from fees.errors import (
    FeeRuleNotFound,
    ImmutableField,
    InvalidCalculation,
    InvalidGlAccount,
    InvalidPeriod,
    InvalidScope,
    InvalidWaiver,
    NegativeAmount,
    OverlappingRule,
    TaxAccountRequired,
    UnknownEvent,
)
from fees.models import CHANNELS, FeeEvent, FeeRule, FeeUsage, FeeWaiver
from fees.selectors import assessment_facts
from fees.specs import SPEC_FIELDS, FeeRuleSpec, schedule_from_stored, spec_apply, spec_of
from ledger.errors import AccountNotFound, LedgerCurrencyMismatch

__all__ = [
    "FeeAssessment",
    "FeeCharge",
    "fee_assess",
    "fee_rule_create",
    "fee_rule_update",
    "fee_rule_validate",
    "fee_usage_release",
    "fee_waiver_create",
    "fee_waiver_validate",
]

# Fields that say what a rule *is*; a different event or currency is a different rule.
IMMUTABLE_FIELDS = frozenset({"event", "currency"})
_OVERLAP_CONSTRAINT = "fee_rule_no_overlap_per_scope"
_MAX_PRIORITY = 32767


def _check_event(event: str, field: str = "event") -> None:
    if event not in FeeEvent.values:
        raise UnknownEvent(
            f"{event[:40]!r} is not a fee event; one of {', '.join(FeeEvent.values)}",
            errors={field: ["unknown fee event"]},
        )


def _check_gl_account(field: str, account_id: int, currency: str, accounts: dict) -> None:
    account = accounts.get(account_id)
    if (
        account is None
        or account.kind != Account.Kind.OFFICE
        or account.currency != currency
        or account.status == Account.Status.CLOSED
    ):
        raise InvalidGlAccount(
            f"{field} must be an open office (GL) account in {currency}",
            errors={field: [f"not an open {currency} office account"]},
        )


def fee_rule_validate(*, spec: FeeRuleSpec, rule_id: int | None = None) -> None:
    """Refuse a rule spec, as a whole, before anything is stored (``rule_id``: when editing).

    The admin form calls this too, so bad input there is a form error, not a half-saved row.

    :raises UnknownEvent: / :raises UnknownCurrency:
    :raises InvalidScope: unknown channel or segment, a product of another currency, priority
        out of range / :raises ProductNotFound:
    :raises InvalidCalculation: / :raises InvalidRate: / :raises NegativeRate:
    :raises RateTooHigh: / :raises NegativeAmount: / :raises InvalidCaps: / :raises InvalidTiers:
        see ``calculators.schedule_validate``; also a bad free-use count or period
    :raises InvalidPeriod: if ``effective_to`` is not after ``effective_from``
    :raises TaxAccountRequired: for a tax rate without a tax account
    :raises InvalidGlAccount: if the income or tax account is not an open office account of
        the rule's currency
    :raises OverlappingRule: if another rule has the same event, currency and scope in an
        overlapping period
    """
    _check_event(spec.event)
    currency_exponent(spec.currency)
    if spec.channel not in ("", *(c for c, _ in CHANNELS)):
        raise InvalidScope(f"unknown channel {spec.channel[:20]!r}", errors={"channel": ["?"]})
    if spec.segment not in ("", *Customer.Segment.values):
        raise InvalidScope(f"unknown segment {spec.segment[:20]!r}", errors={"segment": ["?"]})
    if not 0 <= spec.priority <= _MAX_PRIORITY:
        raise InvalidScope(f"priority is 0..{_MAX_PRIORITY}", errors={"priority": ["out of range"]})
    schedule_validate(spec.schedule())
    if spec.free_uses < 0 or spec.free_period not in PERIODS:
        raise InvalidCalculation(
            "free_uses is a count >= 0 and free_period one of " + ", ".join(PERIODS),
            errors={"free_uses": ["must be >= 0 with a known free_period"]},
        )
    if spec.effective_to is not None and spec.effective_to <= spec.effective_from:
        raise InvalidPeriod(
            "effective_to (exclusive) must be after effective_from",
            errors={"effective_to": ["must be after effective_from"]},
        )
    if spec.tax_rate_percent > 0 and spec.tax_account_id is None:
        raise TaxAccountRequired(
            "a rule with a tax rate names the GL account the tax is credited to",
            errors={"tax_account": ["required when tax_rate_percent > 0"]},
        )
    if spec.product_id is not None:
        product_currency = (
            Product.objects.filter(pk=spec.product_id).values_list("currency", flat=True).first()
        )
        if product_currency is None:
            raise ProductNotFound(f"no product with id {spec.product_id}")
        if product_currency != spec.currency:
            raise InvalidScope(
                f"the product is in {product_currency}, the rule in {spec.currency}",
                errors={"product": [f"not a {spec.currency} product"]},
            )
    accounts = Account.objects.in_bulk(
        [i for i in (spec.income_account_id, spec.tax_account_id) if i is not None]
    )
    _check_gl_account("income_account", spec.income_account_id, spec.currency, accounts)
    if spec.tax_account_id is not None:
        _check_gl_account("tax_account", spec.tax_account_id, spec.currency, accounts)
    _check_overlap(spec, rule_id)


def _check_overlap(spec: FeeRuleSpec, rule_id: int | None) -> None:
    # The exclusion constraint is the guarantee; this query only makes the error friendly.
    others = FeeRule.objects.filter(
        event=spec.event,
        currency=spec.currency,
        product_id=spec.product_id,
        channel=spec.channel,
        segment=spec.segment,
    ).exclude(effective_to__lte=spec.effective_from)
    if spec.effective_to is not None:
        others = others.filter(effective_from__lt=spec.effective_to)
    if rule_id is not None:
        others = others.exclude(pk=rule_id)
    clash = others.values_list("pk", "effective_from", "effective_to").first()
    if clash is not None:
        raise OverlappingRule(
            f"rule {clash[0]} covers the same event, currency and scope from {clash[1]}"
            f" to {clash[2] or 'open-ended'}; end it first (effective_to) or pick other dates",
            errors={"effective_from": ["overlaps another rule of the same scope"]},
            extra={"conflicting_rule": clash[0]},
        )


def _save(rule: FeeRule) -> FeeRule:
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
        if constraint == _OVERLAP_CONSTRAINT:  # lost a race with a concurrent write
            raise OverlappingRule(
                "another rule covers the same event, currency and scope in an overlapping period"
            ) from exc
        raise
    return rule


def fee_rule_create(*, spec: FeeRuleSpec, actor: AbstractBaseUser | None) -> FeeRule:
    """Create a fee rule (version 1) after validating it as a whole.

    Opens a plain (not durable) transaction: the admin calls it inside its own.

    :raises: everything ``fee_rule_validate`` raises
    """
    with transaction.atomic():
        fee_rule_validate(spec=spec)
        rule = FeeRule(version=1)
        spec_apply(rule, spec)
        rule._history_user = actor  # type: ignore[attr-defined]
        _save(rule)
        audit_record(
            action="fee_rule.created", object_type="fee_rule", object_id=rule.pk, actor=actor
        )
        return rule


def fee_rule_update(
    *, rule_id: int, changes: Mapping[str, Any], actor: AbstractBaseUser | None
) -> FeeRule:
    """Change a rule and bump its version; postings already made keep what they recorded.

    ``changes`` maps ``FeeRuleSpec`` field names to new values; the result is validated as a
    whole. The rule row is locked so concurrent edits get distinct versions.

    :raises FeeRuleNotFound: / :raises ImmutableField: for a new event or currency
    :raises: everything ``fee_rule_validate`` raises
    """
    unknown = set(changes) - SPEC_FIELDS
    if unknown:
        raise TypeError(f"not rule fields: {sorted(unknown)}")
    with transaction.atomic():
        rule = FeeRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            raise FeeRuleNotFound(f"no fee rule {rule_id}")
        current = spec_of(rule)
        for name in IMMUTABLE_FIELDS & set(changes):
            if changes[name] != getattr(current, name):
                raise ImmutableField(
                    f"a rule's {name} cannot change; end this rule and create another",
                    errors={name: ["cannot be changed"]},
                )
        spec = replace(current, **changes)
        fee_rule_validate(spec=spec, rule_id=rule.pk)
        spec_apply(rule, spec)
        rule.version += 1
        rule._history_user = actor  # type: ignore[attr-defined]
        _save(rule)
        audit_record(
            action="fee_rule.changed",
            object_type="fee_rule",
            object_id=rule.pk,
            details={"version": rule.version, "fields": sorted(changes)},
            actor=actor,
        )
        return rule


def fee_waiver_validate(
    *,
    account_id: int | None,
    customer_id: int | None,
    event: str,
    reason: str,
    valid_from: date,
    expires_on: date,
) -> None:
    """Refuse a waiver before it is stored (the admin form calls this too).

    :raises InvalidWaiver: unless exactly one of account and customer is given, or without a
        reason / :raises UnknownEvent: / :raises InvalidPeriod:
    """
    if (account_id is None) == (customer_id is None):
        raise InvalidWaiver(
            "a waiver is for exactly one account or one customer",
            errors={"account": ["give account or customer, not both"]},
        )
    if event:
        _check_event(event)
    if not reason.strip():
        raise InvalidWaiver("a waiver states its reason", errors={"reason": ["required"]})
    if expires_on <= valid_from:
        raise InvalidPeriod(
            "expires_on must be after valid_from", errors={"expires_on": ["must be later"]}
        )


def fee_waiver_create(
    *,
    account_id: int | None,
    customer_id: int | None,
    event: str,
    reason: str,
    valid_from: date,
    expires_on: date,
    actor: AbstractBaseUser | None,
    now: datetime,
) -> FeeWaiver:
    """Waive the fees of one account, or of every account of one customer, for a period.

    ``event`` ``''`` waives every fee event. The waiver applies on business dates in
    ``[valid_from, expires_on)``.

    :raises: everything ``fee_waiver_validate`` raises
    """
    fee_waiver_validate(
        account_id=account_id,
        customer_id=customer_id,
        event=event,
        reason=reason,
        valid_from=valid_from,
        expires_on=expires_on,
    )
    with transaction.atomic():
        waiver = FeeWaiver(
            account_id=account_id,
            customer_id=customer_id,
            event=event,
            reason=reason,
            valid_from=valid_from,
            expires_on=expires_on,
            created_at=now,
            created_by=actor,
        )
        waiver._history_user = actor  # type: ignore[attr-defined]
        waiver.save()
        audit_record(
            action="fee_waiver.created",
            object_type="fee_waiver",
            object_id=waiver.pk,
            details={
                "account_id": account_id,
                "customer_id": customer_id,
                "event": event,
                "reason": reason,
            },
            actor=actor,
        )
        return waiver


# --- assessment (the posting path) -----------------------------------------------------------

_COUNT_USE_SQL = f"""
INSERT INTO {FeeUsage._meta.db_table} (rule_id, account_id, period_start, used)
VALUES (%s, %s, %s, 1)
ON CONFLICT (rule_id, account_id, period_start)
DO UPDATE SET used = {FeeUsage._meta.db_table}.used + 1
RETURNING used
"""

_RELEASE_USE_SQL = f"""
UPDATE {FeeUsage._meta.db_table} SET used = used - 1
 WHERE rule_id = %s AND account_id = %s AND period_start = %s AND used > 0
"""


def _count_use(rule_id: int, account_id: int, start: date) -> int:
    # One statement claims the use and says which one it is, so two concurrent postings can
    # never both be "the third free one"; the row stays locked until the posting commits.
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_USE_SQL, [rule_id, account_id, start])
        return int(cursor.fetchone()[0])


def fee_assess(
    *,
    event: str,
    payer_account_id: int,
    amount: Money,
    channel: str,
    business_date: date,
    count_usage: bool,
) -> FeeAssessment:
    """Decide the fee (and its tax) of one event for the payer, without posting anything.

    Picks the rule in force on ``business_date`` whose scope (product, channel, segment)
    matches most specifically, lower ``priority`` first among equals, then the older rule;
    applies free uses and waivers. ``count_usage=True`` is a real posting: it must run inside
    the posting's transaction, and a free-first-N rule's counter is incremented (and stays
    locked until commit). ``count_usage=False`` is a quote and writes nothing.

    :raises UnknownEvent: / :raises NegativeAmount: for a negative amount
    :raises AccountNotFound: if the payer does not exist
    :raises LedgerCurrencyMismatch: if the amount is not in the payer's currency
    """
    _check_event(event)
    if amount.amount < 0:
        raise NegativeAmount(f"a fee is assessed on a non-negative amount, not {amount}")
    facts = assessment_facts(
        event=event, account_id=payer_account_id, channel=channel, business_date=business_date
    )
    if facts is None:
        raise AccountNotFound(f"no account with id {payer_account_id}")
    if facts.currency != amount.currency:
        raise LedgerCurrencyMismatch(
            f"the account is in {facts.currency}, not {amount.currency}",
            errors={"currency": [f"the account is in {facts.currency}"]},
        )
    row = facts.rule
    if row is None:
        return FeeAssessment(charges=[])
    result = fee_compute(schedule_from_stored(row, facts.currency), amount)
    inputs: dict[str, Any] = {
        **result.inputs,
        "scope": {
            "product_id": row["product_id"],
            "channel": row["channel"],
            "segment": row["segment"],
        },
        "priority": row["priority"],
    }
    free_use = False
    usage = None
    if row["free_uses"] > 0:
        start = period_start(row["free_period"], business_date)
        if count_usage:
            assert connection.in_atomic_block, "a counted fee use needs the posting's transaction"
            use_number = _count_use(row["id"], payer_account_id, start)
            usage = UsageKey(rule_id=row["id"], account_id=payer_account_id, period_start=start)
        else:
            use_number = (row["used"] or 0) + 1
        free_use = use_number <= row["free_uses"]
        inputs.update(
            free_uses=row["free_uses"],
            free_period=row["free_period"],
            period_start=start.isoformat(),
            use_number=use_number,
        )
    waived = not free_use and facts.waiver_id is not None
    result = relieved(result, free_use=free_use, waived=waived)
    inputs.update({k: v for k, v in result.inputs.items() if k not in inputs})
    if waived:
        inputs["waiver_id"] = facts.waiver_id
    charge = FeeCharge(
        rule_id=row["id"],
        rule_version=row["version"],
        event=event,
        base_amount=amount,
        fee=result.fee,
        tax=result.tax,
        waived_by=facts.waiver_id if waived else None,
        free_use=free_use,
        income_account_id=row["income_account_id"],
        tax_account_id=row["tax_account_id"],
        inputs=inputs,
        usage=usage,
        income_account_number=row["income_account_number"],
        tax_account_number=row["tax_account_number"],
    )
    return FeeAssessment(charges=[charge])


def fee_usage_release(*, fees: list[dict[str, Any]]) -> int:
    """Give back the free-use counts a posting took, when that posting is reversed.

    ``fees`` is the reversed journal's ``details["fees"]``. Every counted use is released,
    free or charged, so a reversed transaction does not count towards "the first N". Requires
    the reversal's transaction. Returns how many counters were decremented.
    """
    assert connection.in_atomic_block, "fee_usage_release runs in the reversal's transaction"
    released = 0
    with connection.cursor() as cursor:
        for charge in fees:
            usage = charge.get("usage")
            if not usage:
                continue
            cursor.execute(
                _RELEASE_USE_SQL,
                [usage["rule_id"], usage["account_id"], date.fromisoformat(usage["period_start"])],
            )
            released += cursor.rowcount
    return released
