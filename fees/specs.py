"""A fee rule as typed values (``FeeRuleSpec``), and its two spellings: stored and on the wire.

Stored, amounts are integer minor units and tiers a JSON list of minor units; on the wire (the
API and the admin form) amounts and rates are strings such as ``"12.50"`` and ``"0.25"``. The
parsers here are strict (no floats, no exponents, no more decimals than the currency has) and
name the offending field in their errors. Nothing here reads the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from banksim.core.money import InvalidAmount, Money
from fees.calculators import MONTH, FeeSchedule, Tier, plain
from fees.errors import InvalidRate, InvalidTiers

if TYPE_CHECKING:
    from fees.models import FeeRule

RATE_PATTERN = re.compile(r"-?(0|[1-9][0-9]{0,2})(\.[0-9]{1,6})?", re.ASCII)
MAX_TIERS = 50
_TIER_KEYS = frozenset({"up_to", "flat_fee", "rate_percent"})


@dataclass(frozen=True)
class FeeRuleSpec:
    """Everything a rule says; the services validate it as a whole before it is stored."""

    name: str
    event: str
    currency: str
    calc_type: str
    income_account_id: int
    effective_from: date
    effective_to: date | None = None
    product_id: int | None = None
    channel: str = ""
    segment: str = ""
    priority: int = 100
    flat_fee: Money | None = None  # None: zero
    rate_percent: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = ()
    min_fee: Money | None = None
    max_fee: Money | None = None
    free_uses: int = 0
    free_period: str = MONTH
    tax_rate_percent: Decimal = Decimal(0)
    tax_account_id: int | None = None

    def schedule(self) -> FeeSchedule:
        return FeeSchedule(
            calc_type=self.calc_type,
            flat=self.flat_fee if self.flat_fee is not None else Money.zero(self.currency),
            rate_percent=self.rate_percent,
            tiers=self.tiers,
            min_fee=self.min_fee,
            max_fee=self.max_fee,
            tax_rate_percent=self.tax_rate_percent,
        )


SPEC_FIELDS = frozenset(f.name for f in fields(FeeRuleSpec))


# --- stored form -----------------------------------------------------------------------------


def _money_or_none(minor: int | None, currency: str) -> Money | None:
    return None if minor is None else Money.from_minor(minor, currency)


def tiers_to_json(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    return [
        {
            "up_to_minor": None if tier.up_to is None else tier.up_to.minor,
            "flat_minor": tier.flat.minor,
            "rate_percent": plain(tier.rate_percent),
        }
        for tier in tiers
    ]


def tiers_from_json(data: list[dict[str, Any]], currency: str) -> tuple[Tier, ...]:
    return tuple(
        Tier(
            up_to=_money_or_none(item["up_to_minor"], currency),
            flat=Money.from_minor(item["flat_minor"], currency),
            rate_percent=Decimal(item["rate_percent"]),
        )
        for item in data
    )


def schedule_from_stored(row: dict[str, Any], currency: str) -> FeeSchedule:
    """Build the schedule from a rule's stored columns (a model's ``__dict__`` or a SQL row).

    Rates arrive as ``Decimal`` from the ORM and as text from the assessment query.
    """
    return FeeSchedule(
        calc_type=row["calc_type"],
        flat=Money.from_minor(row["flat_minor"], currency),
        rate_percent=Decimal(row["rate_percent"]),
        tiers=tiers_from_json(row["tiers"], currency),
        min_fee=_money_or_none(row["min_fee_minor"], currency),
        max_fee=_money_or_none(row["max_fee_minor"], currency),
        tax_rate_percent=Decimal(row["tax_rate_percent"]),
    )


def spec_of(rule: FeeRule) -> FeeRuleSpec:
    """Return the spec a stored rule says."""
    schedule = schedule_from_stored(rule.__dict__, rule.currency)
    return FeeRuleSpec(
        name=rule.name,
        event=rule.event,
        currency=rule.currency,
        calc_type=rule.calc_type,
        income_account_id=rule.income_account_id,
        effective_from=rule.effective_from,
        effective_to=rule.effective_to,
        product_id=rule.product_id,
        channel=rule.channel,
        segment=rule.segment,
        priority=rule.priority,
        flat_fee=schedule.flat,
        rate_percent=schedule.rate_percent,
        tiers=schedule.tiers,
        min_fee=schedule.min_fee,
        max_fee=schedule.max_fee,
        free_uses=rule.free_uses,
        free_period=rule.free_period,
        tax_rate_percent=schedule.tax_rate_percent,
        tax_account_id=rule.tax_account_id,
    )


def spec_apply(rule: FeeRule, spec: FeeRuleSpec) -> None:
    """Copy a (validated) spec onto the rule's columns; the caller saves."""
    schedule = spec.schedule()
    rule.name = spec.name
    rule.event = spec.event
    rule.currency = spec.currency
    rule.calc_type = spec.calc_type
    rule.income_account_id = spec.income_account_id
    rule.effective_from = spec.effective_from
    rule.effective_to = spec.effective_to
    rule.product_id = spec.product_id
    rule.channel = spec.channel
    rule.segment = spec.segment
    rule.priority = spec.priority
    rule.flat_minor = schedule.flat.minor
    rule.rate_percent = spec.rate_percent
    rule.tiers = tiers_to_json(spec.tiers)
    rule.min_fee_minor = None if spec.min_fee is None else spec.min_fee.minor
    rule.max_fee_minor = None if spec.max_fee is None else spec.max_fee.minor
    rule.free_uses = spec.free_uses
    rule.free_period = spec.free_period
    rule.tax_rate_percent = spec.tax_rate_percent
    rule.tax_account_id = spec.tax_account_id


# --- wire form -------------------------------------------------------------------------------


def parse_amount(field: str, text: object, currency: str) -> Money:
    """Parse a wire amount of the rule's currency; the error names ``field``.

    :raises InvalidAmount: for anything ``Money.parse`` refuses
    """
    try:
        return Money.parse(text, currency)
    except InvalidAmount as exc:
        raise InvalidAmount(exc.detail, errors={field: [exc.detail]}) from exc


def parse_rate(field: str, text: object) -> Decimal:
    """Parse a percentage such as ``"0.25"`` (sign allowed, so a negative rate is refused by
    validation with its own code rather than as a spelling mistake).

    :raises InvalidRate: for anything but a plain decimal string with at most 6 decimals
    """
    if not isinstance(text, str) or not RATE_PATTERN.fullmatch(text):
        message = 'rates are strings like "0.25" (percent, at most 6 decimals)'
        raise InvalidRate(f"{field}: {message}", errors={field: [message]})
    return Decimal(text)


def parse_tiers(data: object, currency: str) -> tuple[Tier, ...]:
    """Parse ``[{"up_to": "1000.00" | null, "flat_fee": "1.00", "rate_percent": "0.1"}, ...]``.

    ``flat_fee`` and ``rate_percent`` default to zero. Order and bounds are checked later, by
    ``calculators.schedule_validate``.

    :raises InvalidTiers: for a shape that is not a list of such objects
    :raises InvalidAmount: / :raises InvalidRate: for a badly spelled value
    """
    if not isinstance(data, list) or len(data) > MAX_TIERS:
        raise InvalidTiers(
            f"tiers is a list of at most {MAX_TIERS} objects",
            errors={"tiers": ["must be a list of objects"]},
        )
    tiers = []
    for index, item in enumerate(data):
        where = f"tiers[{index}]"
        if not isinstance(item, dict) or "up_to" not in item or set(item) - _TIER_KEYS:
            raise InvalidTiers(
                f"{where} must be an object with up_to, flat_fee and rate_percent",
                errors={where: ["expected {up_to, flat_fee, rate_percent}"]},
            )
        up_to = item["up_to"]
        tiers.append(
            Tier(
                up_to=None if up_to is None else parse_amount(f"{where}.up_to", up_to, currency),
                flat=parse_amount(f"{where}.flat_fee", item.get("flat_fee", "0"), currency),
                rate_percent=parse_rate(f"{where}.rate_percent", item.get("rate_percent", "0")),
            )
        )
    return tuple(tiers)


def tiers_to_wire(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    return [
        {
            "up_to": None if tier.up_to is None else tier.up_to.to_wire(),
            "flat_fee": tier.flat.to_wire(),
            "rate_percent": plain(tier.rate_percent),
        }
        for tier in tiers
    ]
