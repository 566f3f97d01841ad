"""Money's laws checked over generated amounts (hypothesis). No database.

The generators stay within what the ledger can store (a signed 64-bit count of minor units)
so a failure here is a failure the bank could actually meet.
"""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from banksim.core.money import CURRENCY_EXPONENTS, CurrencyMismatch, InvalidAmount, Money

BIGINT = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Sums of three of these still fit a bigint.
MINOR = st.integers(min_value=-(10**17), max_value=10**17)
CURRENCIES = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@st.composite
def monies(draw: st.DrawFn, currency: str | None = None) -> Money:
    code = currency or draw(CURRENCIES)
    return Money.from_minor(draw(MINOR), code)


@st.composite
def same_currency(draw: st.DrawFn, n: int) -> list[Money]:
    code = draw(CURRENCIES)
    return [draw(monies(code)) for _ in range(n)]


class TestMinorUnits:
    @given(minor=BIGINT, currency=CURRENCIES)
    def test_from_minor_round_trips_every_storable_amount(self, minor, currency):
        assert Money.from_minor(minor, currency).minor == minor

    @given(minor=BIGINT, currency=CURRENCIES)
    def test_the_wire_form_parses_back_to_the_same_money(self, minor, currency):
        money = Money.from_minor(minor, currency)
        assume(abs(money.amount) < 10**18)  # the wire pattern's own bound

        assert Money.parse(money.to_wire(), currency) == money


class TestArithmeticLaws:
    @given(parts=same_currency(2))
    def test_addition_commutes(self, parts):
        a, b = parts

        assert a + b == b + a

    @given(parts=same_currency(3))
    def test_addition_associates(self, parts):
        a, b, c = parts

        assert (a + b) + c == a + (b + c)

    @given(parts=same_currency(3))
    def test_subtraction_undoes_addition_and_associates_with_it(self, parts):
        a, b, c = parts

        assert (a + b) - b == a
        assert (a - b) - c == a - (b + c)
        assert a - a == Money.zero(a.currency)
        assert a + -a == Money.zero(a.currency)

    @given(parts=same_currency(2))
    def test_arithmetic_on_money_is_arithmetic_on_minor_units(self, parts):
        a, b = parts

        assert (a + b).minor == a.minor + b.minor
        assert (a - b).minor == a.minor - b.minor
        assert (a < b) == (a.minor < b.minor)

    @given(a=monies(), b=monies())
    def test_mixing_currencies_always_raises(self, a, b):
        assume(a.currency != b.currency)

        with pytest.raises(CurrencyMismatch):
            a + b
        with pytest.raises(CurrencyMismatch):
            a - b
        with pytest.raises(CurrencyMismatch):
            a <= b  # noqa: B015


class TestRefusals:
    @given(value=st.floats(allow_nan=True, allow_infinity=True), currency=CURRENCIES)
    def test_floats_are_never_money(self, value, currency):
        with pytest.raises(InvalidAmount):
            Money(value, currency)  # type: ignore[arg-type]
        with pytest.raises(InvalidAmount):
            Money.parse(value, currency)

    @given(minor=MINOR, extra=st.integers(min_value=1, max_value=9), currency=CURRENCIES)
    def test_a_digit_beyond_the_exponent_is_refused(self, minor, extra, currency):
        exponent = CURRENCY_EXPONENTS[currency]
        amount = Decimal(minor).scaleb(-exponent) + Decimal(extra).scaleb(-exponent - 1)

        with pytest.raises(InvalidAmount):
            Money(amount, currency)

    @given(text=st.text(min_size=1, max_size=30))
    def test_parse_accepts_only_what_the_plain_pattern_describes(self, text):
        plain = (
            text.isascii()
            and text.lstrip("-").replace(".", "", 1).isdigit()
            and text.count("-") <= 1
            and not text[1:].count("-")
        )
        try:
            money = Money.parse(text, "KWD")
        except InvalidAmount:
            return

        assert plain, f"{text!r} should have been refused"
        assert money.amount == Decimal(text)


class TestRounded:
    @given(value=st.decimals(min_value=-(10**12), max_value=10**12, places=6), currency=CURRENCIES)
    def test_rounding_lands_on_the_grid_within_half_a_minor_unit(self, value, currency):
        rounded = Money.rounded(value, currency)
        half = Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency]) / 2

        assert abs(rounded.amount - value) <= half

    @given(minor=st.integers(min_value=-(10**12), max_value=10**12), currency=CURRENCIES)
    def test_an_exact_tie_goes_to_the_even_minor_unit(self, minor, currency):
        exponent = CURRENCY_EXPONENTS[currency]
        tie = (Decimal(minor) + Decimal("0.5")).scaleb(-exponent)

        rounded = Money.rounded(tie, currency)

        assert rounded.minor % 2 == 0
        assert rounded.minor in (minor, minor + 1)


class TestAllocate:
    @given(
        money=monies(),
        ratios=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
            any
        ),
    )
    def test_parts_sum_to_the_whole_and_stay_within_one_minor_unit_of_the_exact_share(
        self, money, ratios
    ):
        parts = money.allocate(ratios)

        assert len(parts) == len(ratios)
        assert sum(p.minor for p in parts) == money.minor
        assert {p.currency for p in parts} == {money.currency}
        total = sum(ratios)
        for part, ratio in zip(parts, ratios, strict=True):
            exact = Fraction(money.minor * ratio, total)
            assert abs(part.minor - exact) < 1
            if ratio == 0:
                assert part.is_zero()
            # A part never has the opposite sign of the whole.
            assert part.minor * money.minor >= 0

    @given(money=monies(), ratios=st.lists(st.integers(0, 50), min_size=1, max_size=6).filter(any))
    def test_negating_the_whole_negates_every_part(self, money, ratios):
        assert [-p for p in money.allocate(ratios)] == (-money).allocate(ratios)
