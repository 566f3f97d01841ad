"""Fee calculators: pure functions from a schedule and a base amount to a fee and its tax.

Design overview: a *FeeSchedule* is the arithmetic half of a fee rule (which rule applies is
decided elsewhere, from the database). Nothing here touches the database or a clock, so every
rule of the arithmetic is unit- and property-tested in isolation. The order of operations is
fixed, because a customer disputing one cent will ask for it:

1. the raw fee: ``flat``; ``base * rate / 100`` (``percent``); or, for ``tiered``, the one
   slab whose upper bound (inclusive) is the first at or above the base, priced as that
   slab's ``flat + base * rate / 100``. Slab pricing, not marginal: the whole base is priced
   at one slab's terms, the way banks publish "up to 1,000: 1.00; up to 10,000: 0.1 %".
2. rounded once to the currency's exponent with ``BANKERS_ROUNDING`` (``Money.rounded``),
3. the minimum cap raises it, the maximum cap lowers it,
4. tax = ``rounded(fee * tax rate / 100)``, on the capped fee.

A free use or a waiver (decided by the caller) zeroes fee and tax together (``relieved``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from banksim.core.money import CurrencyMismatch, Money
from fees.errors import (
    InvalidCalculation,
    InvalidCaps,
    InvalidRate,
    InvalidTiers,
    NegativeAmount,
    NegativeRate,
    RateTooHigh,
)

FLAT = "flat"
PERCENT = "percent"
TIERED = "tiered"
CALC_TYPES = (FLAT, PERCENT, TIERED)

DAY = "day"
MONTH = "month"
PERIODS = (DAY, MONTH)

MAX_RATE_PERCENT = Decimal(100)
# Enough digits that base * rate is exact for any amount the wire accepts (24 digits) times
# any rate the database stores (9 digits); rounding then happens once, in Money.rounded.
_EXACT_PRECISION = 60


@dataclass(frozen=True, slots=True)
class Tier:
    """One slab: bases up to and including ``up_to`` (``None``: no upper bound)."""

    up_to: Money | None
    flat: Money
    rate_percent: Decimal


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    calc_type: str
    flat: Money  # also fixes the schedule's currency
    rate_percent: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = ()
    min_fee: Money | None = None
    max_fee: Money | None = None
    tax_rate_percent: Decimal = Decimal(0)

    @property
    def currency(self) -> str:
        return self.flat.currency


@dataclass(frozen=True, slots=True)
class FeeResult:
    fee: Money
    tax: Money
    inputs: dict[str, Any] = field(default_factory=dict)


def plain(value: Decimal) -> str:
    """Render a rate without exponent or trailing zeros: ``Decimal("0.500000")`` -> ``"0.5"``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def percent_of(amount: Decimal, rate_percent: Decimal) -> Decimal:
    """Return ``amount * rate / 100`` exactly (no rounding at all)."""
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        return (amount * rate_percent).scaleb(-2)


def tax_on(fee: Money, tax_rate_percent: Decimal) -> Money:
    """Return the tax on a fee, rounded half-even to the currency."""
    return Money.rounded(percent_of(fee.amount, tax_rate_percent), fee.currency)


def tier_for(tiers: tuple[Tier, ...], base: Money) -> tuple[int, Tier]:
    """Return (index, slab) of the first slab whose upper bound is at or above ``base``.

    :raises InvalidTiers: if no slab covers the base (a validated schedule always has one)
    """
    for index, tier in enumerate(tiers):
        if tier.up_to is None or base <= tier.up_to:
            return index, tier
    raise InvalidTiers(f"no tier covers {base}")


def period_start(period: str, business_date: date) -> date:
    """Return the first day of the free-use period containing ``business_date``."""
    if period == DAY:
        return business_date
    if period == MONTH:
        return business_date.replace(day=1)
    raise InvalidCalculation(f"unknown free-use period {period!r}")


# --- validation ------------------------------------------------------------------------------


def _check_rate(name: str, rate: Decimal) -> None:
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise InvalidRate(f"{name} is not a decimal rate", errors={name: ["not a rate"]})
    if rate < 0:
        raise NegativeRate(f"{name} is negative ({rate})", errors={name: ["must be >= 0"]})
    if rate > MAX_RATE_PERCENT:
        raise RateTooHigh(f"{name} is {rate} percent", errors={name: ["must be <= 100"]})


def _check_amount(name: str, amount: Money | None, currency: str) -> None:
    if amount is None:
        return
    if amount.currency != currency:
        raise InvalidCalculation(
            f"{name} is in {amount.currency}, the rule in {currency}",
            errors={name: [f"must be in {currency}"]},
        )
    if amount.amount < 0:
        raise NegativeAmount(f"{name} is negative ({amount})", errors={name: ["must be >= 0"]})


def _check_tiers(schedule: FeeSchedule) -> None:
    tiers = schedule.tiers
    if schedule.calc_type != TIERED:
        if tiers:
            raise InvalidTiers(
                f"a {schedule.calc_type} rule has no tiers", errors={"tiers": ["must be empty"]}
            )
        return
    if not tiers:
        raise InvalidTiers("a tiered rule needs at least one tier", errors={"tiers": ["empty"]})
    previous: Money | None = None
    for index, tier in enumerate(tiers):
        last = index == len(tiers) - 1
        where = f"tiers[{index}].up_to"
        if last and tier.up_to is not None:
            raise InvalidTiers(
                "the last tier has no upper bound (null), so every amount has a tier",
                errors={where: ["must be null on the last tier"]},
            )
        if not last and tier.up_to is None:
            raise InvalidTiers(
                "only the last tier may be open-ended", errors={where: ["must be an amount"]}
            )
        if tier.up_to is not None:
            if not tier.up_to.is_positive():
                raise InvalidTiers("tier bounds are positive", errors={where: ["must be > 0"]})
            if previous is not None and tier.up_to <= previous:
                raise InvalidTiers(
                    "tier bounds must strictly increase",
                    errors={where: [f"must be greater than {previous.amount}"]},
                )
            previous = tier.up_to


def schedule_validate(schedule: FeeSchedule) -> None:
    """Refuse a schedule the calculators cannot apply unambiguously.

    Zero fees are valid (a more specific rule may make something free); negative ones are not.

    :raises InvalidCalculation: unknown calculation type, or settings that type does not use
    :raises InvalidRate: / :raises NegativeRate: / :raises RateTooHigh: for a rate that is not
        a finite Decimal within 0..100 percent
    :raises NegativeAmount: for a negative flat fee, cap or tier amount
    :raises InvalidCaps: if the minimum fee is above the maximum fee
    :raises InvalidTiers: for missing, unordered or open-in-the-middle slabs
    """
    if schedule.calc_type not in CALC_TYPES:
        raise InvalidCalculation(
            f"calc_type must be one of {', '.join(CALC_TYPES)}",
            errors={"calc_type": [f"unknown calculation type {schedule.calc_type!r}"[:80]]},
        )
    currency = schedule.currency
    _check_rate("rate_percent", schedule.rate_percent)
    _check_rate("tax_rate_percent", schedule.tax_rate_percent)
    for index, tier in enumerate(schedule.tiers):
        _check_rate(f"tiers[{index}].rate_percent", tier.rate_percent)
        _check_amount(f"tiers[{index}].flat_fee", tier.flat, currency)
        _check_amount(f"tiers[{index}].up_to", tier.up_to, currency)
    for name, amount in (
        ("flat_fee", schedule.flat),
        ("min_fee", schedule.min_fee),
        ("max_fee", schedule.max_fee),
    ):
        _check_amount(name, amount, currency)
    if (
        schedule.min_fee is not None
        and schedule.max_fee is not None
        and schedule.min_fee > schedule.max_fee
    ):
        raise InvalidCaps(
            f"min_fee {schedule.min_fee.amount} is above max_fee {schedule.max_fee.amount}",
            errors={"min_fee": ["must not exceed max_fee"]},
        )
    _check_tiers(schedule)
    unused: list[str] = []
    if schedule.calc_type != FLAT and not schedule.flat.is_zero():
        unused.append("flat_fee")
    if schedule.calc_type != PERCENT and schedule.rate_percent != 0:
        unused.append("rate_percent")
    if unused:
        raise InvalidCalculation(
            f"a {schedule.calc_type} rule does not use {', '.join(unused)}; set them to 0",
            errors={name: [f"not used by a {schedule.calc_type} rule"] for name in unused},
        )


# --- computation -----------------------------------------------------------------------------


def _wire(amount: Money | None) -> str | None:
    return None if amount is None else amount.to_wire()


def fee_compute(schedule: FeeSchedule, base: Money) -> FeeResult:
    """Compute the fee and tax a schedule charges on ``base`` (see the module docstring).

    ``inputs`` records everything needed to explain the figure on a statement.

    :raises CurrencyMismatch: if the base is not in the schedule's currency
    :raises NegativeAmount: for a negative base
    """
    currency = schedule.currency
    if base.currency != currency:
        raise CurrencyMismatch(f"cannot charge a {currency} fee on {base.currency}")
    if base.amount < 0:
        raise NegativeAmount(f"a fee is computed on a non-negative amount, not {base}")
    inputs: dict[str, Any] = {"calc_type": schedule.calc_type, "base": base.to_wire()}
    if schedule.calc_type == FLAT:
        raw = schedule.flat.amount
        inputs["flat_fee"] = schedule.flat.to_wire()
    elif schedule.calc_type == PERCENT:
        raw = percent_of(base.amount, schedule.rate_percent)
        inputs["rate_percent"] = plain(schedule.rate_percent)
    elif schedule.calc_type == TIERED:
        index, tier = tier_for(schedule.tiers, base)
        with localcontext() as ctx:
            ctx.prec = _EXACT_PRECISION
            raw = tier.flat.amount + percent_of(base.amount, tier.rate_percent)
        inputs["tier"] = {
            "index": index,
            "up_to": _wire(tier.up_to),
            "flat_fee": tier.flat.to_wire(),
            "rate_percent": plain(tier.rate_percent),
        }
    else:
        raise InvalidCalculation(f"unknown calculation type {schedule.calc_type!r}"[:80])
    fee = Money.rounded(raw, currency)
    inputs["raw_fee"] = plain(raw)
    inputs["rounded_fee"] = fee.to_wire()
    capped = None
    if schedule.min_fee is not None and fee < schedule.min_fee:
        fee, capped = schedule.min_fee, "min"
    elif schedule.max_fee is not None and fee > schedule.max_fee:
        fee, capped = schedule.max_fee, "max"
    inputs["min_fee"] = _wire(schedule.min_fee)
    inputs["max_fee"] = _wire(schedule.max_fee)
    inputs["capped"] = capped
    inputs["tax_rate_percent"] = plain(schedule.tax_rate_percent)
    return FeeResult(fee=fee, tax=tax_on(fee, schedule.tax_rate_percent), inputs=inputs)


def relieved(result: FeeResult, *, free_use: bool, waived: bool) -> FeeResult:
    """Zero fee and tax for a free use or a waiver, recording what they would have been.

    A free use takes precedence in the record: it is what the customer would have had anyway.
    """
    if not (free_use or waived):
        return result
    zero = Money.zero(result.fee.currency)
    inputs = {
        **result.inputs,
        "relief": "free_use" if free_use else "waiver",
        "fee_before_relief": result.fee.to_wire(),
        "tax_before_relief": result.tax.to_wire(),
    }
    return replace(result, fee=zero, tax=zero, inputs=inputs)
