"""Exact money.

Design overview: an amount is a ``Decimal`` tied to an ISO 4217 currency and always quantised
to that currency's exponent (JPY 0, USD 2, KWD 3). The database stores integer *minor units*
(``Money.minor``), so SQL sums are exact and cheap. Floats are refused everywhere; text is
parsed with a strict ASCII pattern before ``Decimal`` sees it, because ``Decimal`` also accepts
``"1_000"``, ``"1e2"`` and non-ASCII digits. There is exactly one rounding mode,
``BANKERS_ROUNDING`` (half to even), used wherever a computed amount (a percentage fee, an
interest accrual) has to land on the currency's grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Self

from banksim.core.errors import InvalidInput

BANKERS_ROUNDING = ROUND_HALF_EVEN

# ISO 4217 minor-unit exponents for the currencies the simulator supports.
CURRENCY_EXPONENTS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "INR": 2,
    "NGN": 2,
    "KES": 2,
    "ZAR": 2,
    "CHF": 2,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
    "JOD": 3,
}

AMOUNT_PATTERN = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,6})?", re.ASCII)


class InvalidAmount(InvalidInput):
    code = "money.invalid_amount"
    title = "Invalid amount"


class UnknownCurrency(InvalidInput):
    code = "money.unknown_currency"
    title = "Unknown currency"


class CurrencyMismatch(InvalidInput):
    code = "money.currency_mismatch"
    title = "Currency mismatch"


def currency_exponent(code: str) -> int:
    """Return the ISO 4217 exponent of ``code``.

    :raises UnknownCurrency: for anything but an upper-case supported code
    """
    try:
        return CURRENCY_EXPONENTS[code]
    except (KeyError, TypeError):
        raise UnknownCurrency(f"{code!r} is not a supported ISO 4217 currency code") from None


# One grid step per currency (Decimal("0.01") for USD), built once: every Money checks its
# amount against it, many times per posting.
_QUANTA: dict[str, Decimal] = {
    code: Decimal(1).scaleb(-exponent) for code, exponent in CURRENCY_EXPONENTS.items()
}


def _quantum(code: str) -> Decimal:
    """The grid step of ``code``; an unknown code raises ``currency_exponent``'s error."""
    quantum = _QUANTA.get(code) if isinstance(code, str) else None
    return quantum if quantum is not None else Decimal(1).scaleb(-currency_exponent(code))


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float) or not isinstance(self.amount, Decimal):
            raise InvalidAmount("money amounts must be Decimal, never float")
        if not self.amount.is_finite():
            raise InvalidAmount("money amounts must be finite")
        quantum = _quantum(self.currency)
        try:
            on_grid = self.amount.quantize(quantum, rounding=BANKERS_ROUNDING)
        except InvalidOperation:
            # More digits than the Decimal context holds: no amount a bank could book.
            raise InvalidAmount(f"{self.amount} is too large to be an amount") from None
        if on_grid != self.amount:
            raise InvalidAmount(
                f"{self.amount} has more decimal places than {self.currency} allows"
                f" ({currency_exponent(self.currency)})"
            )
        # Normalise the representation so equal amounts print identically ("1.50", not "1.5"):
        # the quantised value is equal to the amount and carries the currency's exponent.
        object.__setattr__(self, "amount", on_grid)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def parse(cls, text: object, currency: str) -> Self:
        """Parse a wire amount such as ``"100.50"`` strictly.

        :raises InvalidAmount: for floats, exponents, separators, non-ASCII digits, or more
            decimals than the currency allows
        :raises UnknownCurrency: for an unsupported currency code
        """
        exponent = currency_exponent(currency)
        if not isinstance(text, str):
            raise InvalidAmount('amounts are sent as strings, e.g. "100.50"')
        match = AMOUNT_PATTERN.fullmatch(text)
        if not match:
            raise InvalidAmount(f'{text[:40]!r} is not a plain decimal amount like "100.50"')
        # Strict on the wire: "1.0" JPY or "1.000" USD is a client that misreads the currency,
        # even though the value itself would fit.
        if match.group(2) and len(match.group(2)) - 1 > exponent:
            raise InvalidAmount(
                f"{text!r} has more decimal places than {currency} allows ({exponent})"
            )
        try:
            value = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already guards this
            raise InvalidAmount(f"{text!r} is not a decimal amount") from exc
        return cls(value, currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Self:
        if not isinstance(minor, int) or isinstance(minor, bool):
            raise InvalidAmount("minor units must be an integer")
        return cls(Decimal(minor).scaleb(-currency_exponent(currency)), currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(Decimal(0), currency)

    @classmethod
    def rounded(cls, value: Decimal, currency: str) -> Self:
        """Quantise a computed value (fee, interest) to the currency with BANKERS_ROUNDING."""
        if isinstance(value, float) or not isinstance(value, Decimal):
            raise InvalidAmount("money amounts must be Decimal, never float")
        try:
            rounded = value.quantize(_quantum(currency), rounding=BANKERS_ROUNDING)
        except InvalidOperation:
            raise InvalidAmount(f"{value} is too large to be an amount") from None
        return cls(rounded, currency)

    # --- views --------------------------------------------------------------------------
    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    @property
    def minor(self) -> int:
        return int(self.amount.scaleb(self.exponent))

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def to_wire(self) -> str:
        return str(self.amount)

    # --- arithmetic ---------------------------------------------------------------------
    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")
        return other

    def __add__(self, other: object) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: object) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: object) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: object) -> bool:
        return self.amount <= self._same(other).amount

    def __gt__(self, other: object) -> bool:
        return self.amount > self._same(other).amount

    def __ge__(self, other: object) -> bool:
        return self.amount >= self._same(other).amount

    def is_positive(self) -> bool:
        return self.amount > 0

    def is_zero(self) -> bool:
        return self.amount == 0

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split into parts proportional to ``ratios`` whose sum is exactly ``self``.

        Largest remainder: each part gets the floor of its exact share, and the minor units
        left over go one each to the parts with the largest fractional remainder (the
        earliest part on a tie). No part is ever a whole minor unit away from its exact share.
        """
        if not ratios or any(r < 0 for r in ratios) or sum(ratios) == 0:
            raise InvalidAmount("allocation ratios must be non-negative and not all zero")
        total = sum(ratios)
        minor = self.minor
        sign = -1 if minor < 0 else 1
        magnitude = abs(minor)
        shares = [divmod(magnitude * r, total) for r in ratios]
        parts = [whole for whole, _ in shares]
        remainder = magnitude - sum(parts)
        by_fraction = sorted(range(len(ratios)), key=lambda i: (-shares[i][1], i))
        for i in by_fraction[:remainder]:
            parts[i] += 1
        return [Money.from_minor(sign * p, self.currency) for p in parts]
