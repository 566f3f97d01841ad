"""Money by example: what it refuses, how it rounds, how it splits. No database."""

from decimal import Decimal

import pytest

from banksim.core.money import (
    BANKERS_ROUNDING,
    CurrencyMismatch,
    InvalidAmount,
    Money,
    UnknownCurrency,
)


class TestMoneyConstruction:
    def test_a_float_amount_is_refused(self):
        with pytest.raises(InvalidAmount):
            Money(1.5, "USD")  # type: ignore[arg-type]

    @pytest.mark.parametrize("amount", [1, "1.00", None, True])
    def test_anything_but_a_decimal_is_refused(self, amount):
        with pytest.raises(InvalidAmount):
            Money(amount, "USD")  # type: ignore[arg-type]

    @pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "-Infinity"])
    def test_non_finite_decimals_are_refused(self, amount):
        with pytest.raises(InvalidAmount):
            Money(Decimal(amount), "USD")

    @pytest.mark.parametrize(
        ("amount", "currency"),
        [("1.5", "JPY"), ("0.001", "USD"), ("1.0001", "KWD"), ("0.50", "JPY")],
    )
    def test_more_decimals_than_the_currency_exponent_are_refused(self, amount, currency):
        with pytest.raises(InvalidAmount):
            Money(Decimal(amount), currency)

    @pytest.mark.parametrize(
        ("amount", "currency", "wire"),
        [("15", "JPY", "15"), ("1.5", "USD", "1.50"), ("1.2", "KWD", "1.200"), ("7.0", "JPY", "7")],
    )
    def test_amounts_within_the_exponent_are_normalised_to_it(self, amount, currency, wire):
        money = Money(Decimal(amount), currency)

        assert money.to_wire() == wire

    @pytest.mark.parametrize("currency", ["usd", "Usd", "XXX", "", "USDD", None])
    def test_a_lowercase_or_unknown_currency_is_refused(self, currency):
        with pytest.raises(UnknownCurrency):
            Money(Decimal("1.00"), currency)  # type: ignore[arg-type]

    def test_a_decimal_too_long_for_the_arithmetic_context_is_refused_as_an_amount(self):
        with pytest.raises(InvalidAmount):
            Money(Decimal("1e30"), "USD")

    def test_a_computed_value_too_long_to_round_is_refused_as_an_amount(self):
        with pytest.raises(InvalidAmount):
            Money.rounded(Decimal("1e30"), "USD")


class TestMoneyParse:
    @pytest.mark.parametrize(
        ("text", "currency", "minor"),
        [
            ("100.50", "USD", 10050),
            ("0", "USD", 0),
            ("-12.3", "USD", -1230),
            ("1500", "JPY", 1500),
            ("1.234", "KWD", 1234),
            ("999999999999999999", "JPY", 999_999_999_999_999_999),
        ],
    )
    def test_plain_ascii_decimals_are_accepted(self, text, currency, minor):
        assert Money.parse(text, currency).minor == minor

    @pytest.mark.parametrize(
        "text",
        [
            "1e2",
            "1E2",
            "1_000",
            "1,000",
            " 1",
            "1 ",
            "+1",
            "1.",
            ".5",
            "-.5",
            "01",
            "--1",
            "١٢",  # Arabic-Indic digits: Decimal would read them as 12
            "１２",  # fullwidth digits
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "inf",
            "1\x00",
            "\x001",
            "",
            "0x10",
            "1" * 19,  # over-long: more than 18 integer digits
            "1." + "0" * 7,  # over-long: more than 6 decimals even if they are zeros
            "1" * 10_000,
        ],
    )
    def test_anything_but_a_plain_ascii_decimal_is_refused(self, text):
        with pytest.raises(InvalidAmount):
            Money.parse(text, "USD")

    @pytest.mark.parametrize("value", [1.5, 100, Decimal("1.00"), None, b"1.00"])
    def test_non_string_input_is_refused(self, value):
        with pytest.raises(InvalidAmount):
            Money.parse(value, "USD")

    @pytest.mark.parametrize(
        ("text", "currency"),
        [("1.5", "JPY"), ("1.001", "USD"), ("1.0001", "KWD"), ("1.0", "JPY"), ("1.000", "USD")],
    )
    def test_more_decimals_than_the_currency_allows_are_refused(self, text, currency):
        with pytest.raises(InvalidAmount):
            Money.parse(text, currency)

    @pytest.mark.parametrize(
        ("text", "currency"), [("1", "JPY"), ("1.00", "USD"), ("1.000", "KWD")]
    )
    def test_exactly_the_currency_exponent_is_accepted(self, text, currency):
        assert Money.parse(text, currency).to_wire() == text

    @pytest.mark.parametrize("currency", ["usd", "XXX", "US", "", "ＵＳＤ"])
    def test_a_lowercase_or_unknown_currency_is_refused(self, currency):
        with pytest.raises(UnknownCurrency):
            Money.parse("1.00", currency)


class TestMoneyArithmetic:
    def test_adding_and_subtracting_stay_exact(self):
        a = Money.parse("0.10", "USD")
        b = Money.parse("0.20", "USD")

        assert (a + b).to_wire() == "0.30"
        assert (a - b).to_wire() == "-0.10"
        assert (-a).to_wire() == "-0.10"

    def test_mixing_currencies_raises(self):
        dollars = Money.parse("1.00", "USD")
        euros = Money.parse("1.00", "EUR")

        with pytest.raises(CurrencyMismatch):
            dollars + euros
        with pytest.raises(CurrencyMismatch):
            dollars - euros
        with pytest.raises(CurrencyMismatch):
            dollars < euros  # noqa: B015

    def test_combining_with_a_bare_number_raises(self):
        with pytest.raises(TypeError):
            Money.parse("1.00", "USD") + Decimal("1.00")

    def test_minor_units_round_trip(self):
        assert Money.from_minor(-123456, "KWD").to_wire() == "-123.456"
        assert Money.from_minor(-123456, "KWD").minor == -123456

    @pytest.mark.parametrize("minor", [1.0, "100", True, Decimal(1)])
    def test_minor_units_must_be_an_integer(self, minor):
        with pytest.raises(InvalidAmount):
            Money.from_minor(minor, "USD")  # type: ignore[arg-type]


class TestMoneyRounded:
    def test_the_one_rounding_mode_is_half_even(self):
        assert BANKERS_ROUNDING == "ROUND_HALF_EVEN"

    @pytest.mark.parametrize(
        ("value", "currency", "wire"),
        [
            ("2.5", "JPY", "2"),
            ("3.5", "JPY", "4"),
            ("-2.5", "JPY", "-2"),
            ("-3.5", "JPY", "-4"),
            ("2.51", "JPY", "3"),
            ("0.125", "USD", "0.12"),
            ("0.135", "USD", "0.14"),
            ("0.1251", "USD", "0.13"),
            ("-0.125", "USD", "-0.12"),
            ("0.0005", "KWD", "0.000"),
            ("0.0015", "KWD", "0.002"),
            ("1.2345", "KWD", "1.234"),
            ("1.2355", "KWD", "1.236"),
        ],
    )
    def test_ties_go_to_the_even_neighbour(self, value, currency, wire):
        assert Money.rounded(Decimal(value), currency).to_wire() == wire

    def test_a_float_is_refused(self):
        with pytest.raises(InvalidAmount):
            Money.rounded(0.125, "USD")  # type: ignore[arg-type]


class TestMoneyAllocate:
    def test_remainder_cents_go_to_the_earliest_parts_on_a_tie(self):
        parts = Money.parse("100.00", "USD").allocate([1, 1, 1])

        assert [p.to_wire() for p in parts] == ["33.34", "33.33", "33.33"]

    def test_the_remainder_goes_to_the_largest_fraction_not_to_an_exact_share(self):
        # 21.527 x 20/1045 is exactly 0.412; the spare fil belongs to the 136 share (x.6).
        parts = Money.parse("21.527", "BHD").allocate([20, 136, 889])

        assert [p.to_wire() for p in parts] == ["0.412", "2.802", "18.313"]

    def test_negative_amounts_split_symmetrically(self):
        parts = Money.parse("-100.00", "USD").allocate([1, 1, 1])

        assert [p.to_wire() for p in parts] == ["-33.34", "-33.33", "-33.33"]

    def test_a_zero_ratio_gets_nothing_even_when_a_remainder_is_left(self):
        parts = Money.parse("1", "JPY").allocate([0, 1, 1])

        assert [p.to_wire() for p in parts] == ["0", "1", "0"]

    @pytest.mark.parametrize("ratios", [[], [0, 0], [1, -1]])
    def test_empty_all_zero_or_negative_ratios_are_refused(self, ratios):
        with pytest.raises(InvalidAmount):
            Money.parse("1.00", "USD").allocate(ratios)
