"""The fee calculators, with no database: every calculation type, rounding at exponents 0, 2
and 3, caps, tiers, tax, relief (free uses and waivers), validation and the fee legs."""

import json
from datetime import date
from decimal import Decimal, localcontext

import pytest

from banksim.core.money import CurrencyMismatch, InvalidAmount, Money
from fees.assessment import FeeAssessment, FeeCharge
from fees.calculators import (
    FLAT,
    PERCENT,
    TIERED,
    FeeSchedule,
    Tier,
    fee_compute,
    percent_of,
    period_start,
    plain,
    relieved,
    schedule_validate,
    tax_on,
    tier_for,
)
from fees.errors import (
    InvalidCalculation,
    InvalidCaps,
    InvalidRate,
    InvalidTiers,
    NegativeAmount,
    NegativeRate,
    RateTooHigh,
)
from fees.specs import parse_amount, parse_rate, parse_tiers, tiers_from_json, tiers_to_json
from ledger.posting import Leg


def m(text: str, currency: str = "USD") -> Money:
    return Money.parse(text, currency)


def flat(fee: str, currency: str = "USD", **kw) -> FeeSchedule:
    return FeeSchedule(calc_type=FLAT, flat=m(fee, currency), **kw)


def percent(rate: str, currency: str = "USD", **kw) -> FeeSchedule:
    return FeeSchedule(
        calc_type=PERCENT, flat=Money.zero(currency), rate_percent=Decimal(rate), **kw
    )


def tiered(*tiers: tuple, currency: str = "USD", **kw) -> FeeSchedule:
    return FeeSchedule(
        calc_type=TIERED,
        flat=Money.zero(currency),
        tiers=tuple(
            Tier(
                up_to=None if up_to is None else m(up_to, currency),
                flat=m(fee, currency),
                rate_percent=Decimal(rate),
            )
            for up_to, fee, rate in tiers
        ),
        **kw,
    )


def fee_of(schedule: FeeSchedule, base: str) -> str:
    return fee_compute(schedule, m(base, schedule.currency)).fee.to_wire()


class TestFlatFee:
    def test_charges_the_flat_amount_whatever_the_base(self):
        schedule = flat("2.50")

        fees = [fee_of(schedule, base) for base in ("0", "1.00", "1000000.00")]

        assert fees == ["2.50", "2.50", "2.50"]

    def test_records_its_inputs_for_a_statement(self):
        result = fee_compute(flat("2.50", tax_rate_percent=Decimal("15")), m("10.00"))

        assert result.inputs["calc_type"] == "flat"
        assert result.inputs["flat_fee"] == "2.50"
        assert result.inputs["base"] == "10.00"
        assert result.inputs["tax_rate_percent"] == "15"
        assert result.inputs["capped"] is None

    def test_a_zero_flat_fee_is_a_valid_free_override(self):
        schedule = flat("0")

        schedule_validate(schedule)

        assert fee_of(schedule, "100.00") == "0.00"


class TestPercentFeeRounding:
    @pytest.mark.parametrize(
        ("currency", "rate", "base", "expected"),
        [
            # exponent 2: half-even on the cent
            ("USD", "0.5", "1.00", "0.00"),  # 0.005 -> 0.00 (even)
            ("USD", "0.5", "3.00", "0.02"),  # 0.015 -> 0.02 (even)
            ("USD", "0.5", "5.00", "0.02"),  # 0.025 -> 0.02 (even)
            ("USD", "0.5", "5.02", "0.03"),  # 0.0251 -> 0.03 (above half)
            ("USD", "1.25", "1234.56", "15.43"),  # 15.432 -> 15.43
            # exponent 0: half-even on the yen
            ("JPY", "1", "50", "0"),  # 0.5 -> 0
            ("JPY", "1", "150", "2"),  # 1.5 -> 2
            ("JPY", "1", "250", "2"),  # 2.5 -> 2
            ("JPY", "0.3", "1001", "3"),  # 3.003 -> 3
            # exponent 3: half-even on the fils
            ("KWD", "1", "0.250", "0.002"),  # 0.0025 -> 0.002
            ("KWD", "1", "0.350", "0.004"),  # 0.0035 -> 0.004
            ("KWD", "0.75", "12.345", "0.093"),  # 0.0925875 -> 0.093
        ],
    )
    def test_rounds_half_to_even_at_the_currency_exponent(self, currency, rate, base, expected):
        schedule = percent(rate, currency)

        assert fee_of(schedule, base) == expected

    def test_rounds_once_from_the_exact_product(self):
        result = fee_compute(percent("0.123456"), m("123456789012.34"))

        assert result.inputs["raw_fee"] == "152414813.4430744704"
        assert result.fee == m("152414813.44")

    def test_the_product_is_exact_beyond_the_default_decimal_precision(self):
        amount = Decimal("999999999999999999.999999")
        rate = Decimal("999.999999")
        with localcontext() as ctx:
            ctx.prec = 100
            exact = amount * rate / 100

        computed = percent_of(amount, rate)

        assert computed == exact
        assert amount * rate / 100 != exact  # the default 28 digits would have rounded


class TestCaps:
    def test_the_minimum_raises_a_small_fee(self):
        result = fee_compute(percent("0.1", min_fee=m("1.00")), m("50.00"))

        assert result.fee == m("1.00")
        assert result.inputs["rounded_fee"] == "0.05"
        assert result.inputs["capped"] == "min"

    def test_the_maximum_lowers_a_large_fee(self):
        result = fee_compute(percent("0.1", max_fee=m("25.00")), m("100000.00"))

        assert result.fee == m("25.00")
        assert result.inputs["capped"] == "max"

    def test_a_fee_between_the_caps_is_untouched(self):
        result = fee_compute(percent("0.1", min_fee=m("1.00"), max_fee=m("25.00")), m("5000.00"))

        assert result.fee == m("5.00")
        assert result.inputs["capped"] is None

    def test_caps_apply_after_rounding(self):
        # 0.995 rounds half-even to 1.00 (the 9 is odd), which meets the minimum exactly, so
        # no cap is reported.
        result = fee_compute(percent("0.5", min_fee=m("1.00")), m("199.00"))

        assert result.inputs["rounded_fee"] == "1.00"
        assert result.inputs["capped"] is None

    def test_equal_caps_fix_the_fee(self):
        schedule = percent("3", min_fee=m("4.00"), max_fee=m("4.00"))

        schedule_validate(schedule)

        assert [fee_of(schedule, b) for b in ("1.00", "1000.00")] == ["4.00", "4.00"]

    def test_caps_work_in_a_zero_exponent_currency(self):
        schedule = percent("1", "JPY", min_fee=m("100", "JPY"), max_fee=m("500", "JPY"))

        assert [fee_of(schedule, b) for b in ("1000", "30000", "90000")] == ["100", "300", "500"]


class TestTiers:
    SCHEDULE = tiered(
        ("1000.00", "1.00", "0"),
        ("10000.00", "0", "0.1"),
        (None, "5.00", "0.05"),
    )

    @pytest.mark.parametrize(
        ("base", "expected", "tier"),
        [
            ("0.00", "1.00", 0),
            ("1000.00", "1.00", 0),  # the bound is inclusive
            ("1000.01", "1.00", 1),  # 1.00001 -> 1.00, priced wholly at the second slab
            ("5000.00", "5.00", 1),  # slab, not marginal: 0.1 % of all of it
            ("10000.00", "10.00", 1),
            ("10000.01", "10.00", 2),  # 5.00 + 5.0000005 -> 10.00
            ("100000.00", "55.00", 2),
        ],
    )
    def test_prices_the_whole_base_at_the_slab_containing_it(self, base, expected, tier):
        result = fee_compute(self.SCHEDULE, m(base))

        assert result.fee.to_wire() == expected
        assert result.inputs["tier"]["index"] == tier

    def test_records_the_slab_it_used(self):
        result = fee_compute(self.SCHEDULE, m("5000.00"))

        assert result.inputs["tier"] == {
            "index": 1,
            "up_to": "10000.00",
            "flat_fee": "0.00",
            "rate_percent": "0.1",
        }

    def test_caps_apply_to_a_tiered_fee(self):
        schedule = tiered(
            ("100", "0", "10"), (None, "0", "1"), currency="JPY", max_fee=m("5", "JPY")
        )

        assert [fee_of(schedule, b) for b in ("40", "100", "101", "1000")] == ["4", "5", "1", "5"]

    def test_tiers_in_a_three_decimal_currency(self):
        schedule = tiered(("10.000", "0.100", "0"), (None, "0", "0.5"), currency="KWD")

        assert [fee_of(schedule, b) for b in ("10.000", "10.001", "250.500")] == [
            "0.100",
            "0.050",
            "1.252",  # 1.2525 -> 1.252 (even)
        ]

    def test_tier_for_finds_no_slab_past_a_bounded_last_tier(self):
        tiers = (Tier(up_to=m("1.00"), flat=m("0"), rate_percent=Decimal(0)),)

        with pytest.raises(InvalidTiers):
            tier_for(tiers, m("2.00"))


class TestTax:
    @pytest.mark.parametrize(
        ("currency", "fee", "rate", "tax"),
        [
            ("USD", "2.50", "15", "0.38"),  # 0.375 -> 0.38 (even)
            ("USD", "2.30", "15", "0.34"),  # 0.345 -> 0.34 (even)
            ("JPY", "150", "10", "15"),
            ("JPY", "25", "10", "2"),  # 2.5 -> 2
            ("KWD", "0.125", "5", "0.006"),  # 0.00625 -> 0.006
            ("USD", "2.50", "0", "0.00"),
        ],
    )
    def test_tax_is_the_rounded_rate_of_the_fee(self, currency, fee, rate, tax):
        assert tax_on(m(fee, currency), Decimal(rate)).to_wire() == tax

    def test_tax_is_computed_on_the_capped_fee(self):
        schedule = percent("0.1", min_fee=m("2.00"), tax_rate_percent=Decimal("7.5"))

        result = fee_compute(schedule, m("10.00"))

        assert result.fee == m("2.00")
        assert result.tax == m("0.15")


class TestRelief:
    RESULT = fee_compute(flat("2.50", tax_rate_percent=Decimal("10")), m("10.00"))

    def test_a_free_use_zeroes_fee_and_tax_and_says_what_they_would_have_been(self):
        result = relieved(self.RESULT, free_use=True, waived=False)

        assert (result.fee, result.tax) == (m("0"), m("0"))
        assert result.inputs["relief"] == "free_use"
        assert result.inputs["fee_before_relief"] == "2.50"
        assert result.inputs["tax_before_relief"] == "0.25"

    def test_a_waiver_zeroes_fee_and_tax(self):
        result = relieved(self.RESULT, free_use=False, waived=True)

        assert result.fee.is_zero() and result.tax.is_zero()
        assert result.inputs["relief"] == "waiver"

    def test_no_relief_leaves_the_result_alone(self):
        assert relieved(self.RESULT, free_use=False, waived=False) is self.RESULT


class TestComputeRefusals:
    def test_a_base_in_another_currency_is_refused(self):
        with pytest.raises(CurrencyMismatch):
            fee_compute(flat("1.00"), m("1", "JPY"))

    def test_a_negative_base_is_refused(self):
        with pytest.raises(NegativeAmount):
            fee_compute(flat("1.00"), m("-1.00"))


class TestScheduleValidate:
    @pytest.mark.parametrize(
        ("schedule", "error", "field"),
        [
            (percent("-0.5"), NegativeRate, "rate_percent"),
            (percent("100.000001"), RateTooHigh, "rate_percent"),
            (flat("1.00", tax_rate_percent=Decimal("-1")), NegativeRate, "tax_rate_percent"),
            (flat("1.00", tax_rate_percent=Decimal("101")), RateTooHigh, "tax_rate_percent"),
            (flat("1.00", tax_rate_percent=Decimal("NaN")), InvalidRate, "tax_rate_percent"),
            (flat("-1.00"), NegativeAmount, "flat_fee"),
            (percent("1", min_fee=m("-0.01")), NegativeAmount, "min_fee"),
            (percent("1", max_fee=m("-0.01")), NegativeAmount, "max_fee"),
            (percent("1", min_fee=m("5.00"), max_fee=m("4.99")), InvalidCaps, "min_fee"),
            (percent("1", min_fee=m("5", "JPY")), InvalidCalculation, "min_fee"),
            (tiered(), InvalidTiers, "tiers"),
            (tiered(("100.00", "1.00", "0")), InvalidTiers, "tiers[0].up_to"),
            (tiered((None, "1.00", "0"), (None, "2.00", "0")), InvalidTiers, "tiers[0].up_to"),
            (
                tiered(("100.00", "1.00", "0"), ("100.00", "2.00", "0"), (None, "3.00", "0")),
                InvalidTiers,
                "tiers[1].up_to",
            ),
            (
                tiered(("100.00", "1.00", "0"), ("50.00", "2.00", "0"), (None, "3.00", "0")),
                InvalidTiers,
                "tiers[1].up_to",
            ),
            (tiered(("0", "1.00", "0"), (None, "2.00", "0")), InvalidTiers, "tiers[0].up_to"),
            (tiered((None, "1.00", "-2")), NegativeRate, "tiers[0].rate_percent"),
            (tiered((None, "-1.00", "0")), NegativeAmount, "tiers[0].flat_fee"),
            (
                FeeSchedule(
                    calc_type=FLAT,
                    flat=m("1.00"),
                    tiers=(Tier(up_to=None, flat=m("1.00"), rate_percent=Decimal(0)),),
                ),
                InvalidTiers,
                "tiers",
            ),
            (flat("1.00", rate_percent=Decimal("0.5")), InvalidCalculation, "rate_percent"),
            (
                FeeSchedule(calc_type=PERCENT, flat=m("1.00"), rate_percent=Decimal(1)),
                InvalidCalculation,
                "flat_fee",
            ),
            (FeeSchedule(calc_type="marginal", flat=m("0")), InvalidCalculation, "calc_type"),
        ],
    )
    def test_refuses_a_schedule_it_cannot_apply(self, schedule, error, field):
        with pytest.raises(error) as exc:
            schedule_validate(schedule)

        assert field in exc.value.errors
        assert exc.value.code.startswith("fees.")

    def test_accepts_a_well_formed_tiered_schedule(self):
        schedule_validate(TestTiers.SCHEDULE)


class TestWireParsing:
    @pytest.mark.parametrize("text", ["1e2", "0.1234567", "1_0", "١", " 1", "", "1000", "+1"])
    def test_a_rate_is_a_plain_decimal_string(self, text):
        with pytest.raises(InvalidRate) as exc:
            parse_rate("rate_percent", text)

        assert "rate_percent" in exc.value.errors

    def test_a_rate_sent_as_a_number_is_refused(self):
        with pytest.raises(InvalidRate):
            parse_rate("rate_percent", 1)

    def test_a_negative_rate_parses_so_validation_can_name_it(self):
        assert parse_rate("rate_percent", "-0.5") == Decimal("-0.5")

    def test_an_amount_error_names_its_field(self):
        with pytest.raises(InvalidAmount) as exc:
            parse_amount("min_fee", "1.001", "USD")

        assert "min_fee" in exc.value.errors

    @pytest.mark.parametrize(
        "data",
        [
            "tiers",
            {"up_to": None},
            [1],
            [{"flat_fee": "1.00"}],
            [{"up_to": None, "extra": "1"}],
            [{"up_to": None}] * 51,
        ],
    )
    def test_tiers_must_be_a_list_of_tier_objects(self, data):
        with pytest.raises(InvalidTiers):
            parse_tiers(data, "USD")

    def test_a_tier_amount_with_too_many_decimals_names_its_place(self):
        with pytest.raises(InvalidAmount) as exc:
            parse_tiers([{"up_to": "1.5", "flat_fee": "1"}], "JPY")

        assert "tiers[0].up_to" in exc.value.errors

    def test_tiers_round_trip_through_storage_in_minor_units(self):
        tiers = parse_tiers(
            [{"up_to": "10.000", "flat_fee": "0.100"}, {"up_to": None, "rate_percent": "0.25"}],
            "KWD",
        )

        stored = tiers_to_json(tiers)

        assert stored == [
            {"up_to_minor": 10000, "flat_minor": 100, "rate_percent": "0"},
            {"up_to_minor": None, "flat_minor": 0, "rate_percent": "0.25"},
        ]
        assert tiers_from_json(stored, "KWD") == tiers


class TestPeriodsAndRates:
    def test_a_month_period_starts_on_the_first(self):
        assert period_start("month", date(2026, 11, 30)) == date(2026, 11, 1)

    def test_a_day_period_is_the_day(self):
        assert period_start("day", date(2026, 11, 30)) == date(2026, 11, 30)

    def test_an_unknown_period_is_refused(self):
        with pytest.raises(InvalidCalculation):
            period_start("week", date(2026, 11, 30))

    @pytest.mark.parametrize(
        ("value", "text"),
        [("0.500000", "0.5"), ("100.000000", "100"), ("0", "0"), ("0.000001", "0.000001")],
    )
    def test_rates_print_without_exponent_or_trailing_zeros(self, value, text):
        assert plain(Decimal(value)) == text


def charge(fee: str, tax: str, *, currency: str = "USD", tax_account: int | None = 30):
    return FeeCharge(
        rule_id=1,
        rule_version=2,
        event="transfer_out",
        base_amount=m("100", currency),
        fee=m(fee, currency),
        tax=m(tax, currency),
        waived_by=None,
        free_use=False,
        income_account_id=20,
        tax_account_id=tax_account,
        inputs={"calc_type": "flat"},
    )


class TestFeeLegs:
    def test_a_fee_and_its_tax_debit_the_payer_and_credit_income_and_tax_gls(self):
        assessment = FeeAssessment(charges=[charge("2.50", "0.38")])

        legs = assessment.legs(10)

        assert legs == [
            Leg(10, "D", m("2.50"), "fee"),
            Leg(20, "C", m("2.50"), "fee"),
            Leg(10, "D", m("0.38"), "fee_tax"),
            Leg(30, "C", m("0.38"), "fee_tax"),
        ]

    def test_zero_amounts_produce_no_legs(self):
        assessment = FeeAssessment(
            charges=[charge("0", "0", tax_account=None), charge("1.00", "0", tax_account=None)]
        )

        assert assessment.legs(10) == [
            Leg(10, "D", m("1.00"), "fee"),
            Leg(20, "C", m("1.00"), "fee"),
        ]

    def test_no_charges_no_legs_and_zero_totals(self):
        assessment = FeeAssessment(charges=[])

        assert assessment.legs(10) == []
        assert assessment.fee_total("JPY") == Money.zero("JPY")

    def test_a_fee_on_a_deposit_is_deducted_from_the_credit(self):
        assessment = FeeAssessment(charges=[charge("2.00", "0.30")])
        principal = [Leg(99, "D", m("100.00")), Leg(10, "C", m("100.00"))]

        legs = assessment.legs_with(principal, 10)

        assert legs == [
            Leg(99, "D", m("100.00")),
            Leg(10, "C", m("97.70")),
            Leg(20, "C", m("2.00"), "fee"),
            Leg(30, "C", m("0.30"), "fee_tax"),
        ]

    def test_a_fee_larger_than_the_deposit_turns_the_payer_leg_into_a_debit(self):
        assessment = FeeAssessment(charges=[charge("5.00", "0", tax_account=None)])
        principal = [Leg(99, "D", m("3.00")), Leg(10, "C", m("3.00"))]

        legs = assessment.legs_with(principal, 10)

        assert legs == [
            Leg(99, "D", m("3.00")),
            Leg(10, "D", m("2.00"), "fee"),
            Leg(20, "C", m("5.00"), "fee"),
        ]

    def test_a_fee_equal_to_the_deposit_leaves_no_payer_leg(self):
        assessment = FeeAssessment(charges=[charge("3.00", "0", tax_account=None)])
        principal = [Leg(99, "D", m("3.00")), Leg(10, "C", m("3.00"))]

        assert assessment.legs_with(principal, 10) == [
            Leg(99, "D", m("3.00")),
            Leg(20, "C", m("3.00"), "fee"),
        ]

    def test_a_transfer_keeps_principal_and_adds_fee_legs(self):
        assessment = FeeAssessment(charges=[charge("1.00", "0", tax_account=None)])
        principal = [Leg(10, "D", m("50.00")), Leg(11, "C", m("50.00"))]

        assert assessment.legs_with(principal, 10) == [*principal, *assessment.legs(10)]

    def test_details_are_plain_json(self):
        details = FeeAssessment(charges=[charge("2.50", "0.38")]).details()

        assert json.loads(json.dumps(details)) == details
        assert details[0]["rule_id"] == 1 and details[0]["rule_version"] == 2
        assert details[0]["fee"] == "2.50" and details[0]["tax"] == "0.38"
        assert details[0]["usage"] is None
