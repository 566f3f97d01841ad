"""Laws of the fee calculators and fee legs over generated schedules and amounts (hypothesis).

No database. Currencies cover exponents 0 (JPY), 2 (USD) and 3 (KWD).
"""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from banksim.core.money import Money
from fees.assessment import FeeAssessment, FeeCharge
from fees.calculators import (
    FLAT,
    PERCENT,
    TIERED,
    FeeSchedule,
    Tier,
    fee_compute,
    percent_of,
    relieved,
    schedule_validate,
    tax_on,
)
from ledger.posting import Leg

CURRENCIES = st.sampled_from(["JPY", "USD", "KWD"])
RATES = st.decimals(min_value=0, max_value=100, places=4)
SMALL_RATES = st.decimals(min_value=0, max_value=5, places=6)
MINOR = st.integers(min_value=0, max_value=10**12)

PAYER, PAYEE, CASH, INCOME, TAX = 1, 2, 3, 4, 5


def money(minor: int, currency: str) -> Money:
    return Money.from_minor(minor, currency)


@st.composite
def schedules(draw, currency: str, calc_types=(FLAT, PERCENT, TIERED)) -> FeeSchedule:
    calc_type = draw(st.sampled_from(calc_types))
    zero = Money.zero(currency)
    caps = draw(st.lists(st.integers(0, 10**7), min_size=0, max_size=2).map(sorted))
    min_fee = max_fee = None
    if len(caps) == 2:
        min_fee, max_fee = money(caps[0], currency), money(caps[1], currency)
    elif len(caps) == 1:
        which = draw(st.booleans())
        min_fee = money(caps[0], currency) if which else None
        max_fee = None if which else money(caps[0], currency)
    common = {"min_fee": min_fee, "max_fee": max_fee, "tax_rate_percent": draw(RATES)}
    if calc_type == FLAT:
        return FeeSchedule(
            calc_type=FLAT, flat=money(draw(st.integers(0, 10**6)), currency), **common
        )
    if calc_type == PERCENT:
        return FeeSchedule(calc_type=PERCENT, flat=zero, rate_percent=draw(SMALL_RATES), **common)
    bounds = sorted(set(draw(st.lists(st.integers(1, 10**11), min_size=0, max_size=4))))
    tiers = tuple(
        Tier(
            up_to=money(bound, currency) if bound is not None else None,
            flat=money(draw(st.integers(0, 10**5)), currency),
            rate_percent=draw(SMALL_RATES),
        )
        for bound in [*bounds, None]
    )
    return FeeSchedule(calc_type=TIERED, flat=zero, tiers=tiers, **common)


@st.composite
def schedule_and_base(draw, calc_types=(FLAT, PERCENT, TIERED)):
    currency = draw(CURRENCIES)
    return draw(schedules(currency, calc_types)), money(draw(MINOR), currency)


def charge_for(schedule: FeeSchedule, base: Money, *, free_use=False, waived=False) -> FeeCharge:
    result = relieved(fee_compute(schedule, base), free_use=free_use, waived=waived)
    return FeeCharge(
        rule_id=1,
        rule_version=1,
        event="transfer_out",
        base_amount=base,
        fee=result.fee,
        tax=result.tax,
        waived_by=7 if waived else None,
        free_use=free_use,
        income_account_id=INCOME,
        tax_account_id=TAX,
        inputs=result.inputs,
    )


def net_by_side(legs: list[Leg]) -> tuple[int, int]:
    debit = sum(leg.amount.minor for leg in legs if leg.side == "D")
    credit = sum(leg.amount.minor for leg in legs if leg.side == "C")
    return debit, credit


def assert_postable(legs: list[Leg]) -> None:
    """What journal_post demands of legs: positive, one currency, balanced, no account on
    both sides."""
    assert all(leg.amount.is_positive() for leg in legs)
    assert len({leg.amount.currency for leg in legs}) == 1
    debit, credit = net_by_side(legs)
    assert debit == credit
    debited = {leg.account_id for leg in legs if leg.side == "D"}
    credited = {leg.account_id for leg in legs if leg.side == "C"}
    assert not debited & credited


class TestCalculatorLaws:
    @given(case=schedule_and_base())
    def test_generated_schedules_are_valid_and_fees_are_never_negative(self, case):
        schedule, base = case

        schedule_validate(schedule)
        result = fee_compute(schedule, base)

        assert result.fee.amount >= 0 and result.tax.amount >= 0
        assert result.fee.currency == result.tax.currency == base.currency

    @given(case=schedule_and_base())
    def test_the_fee_respects_its_caps(self, case):
        schedule, base = case

        fee = fee_compute(schedule, base).fee

        if schedule.min_fee is not None:
            assert fee >= schedule.min_fee
        if schedule.max_fee is not None:
            assert fee <= schedule.max_fee

    @given(case=schedule_and_base())
    def test_tax_is_the_rounded_rate_of_the_fee_and_never_exceeds_it(self, case):
        schedule, base = case

        result = fee_compute(schedule, base)

        assert result.tax == tax_on(result.fee, schedule.tax_rate_percent)
        assert result.tax <= result.fee

    @given(case=schedule_and_base(calc_types=(PERCENT,)))
    def test_an_uncapped_percent_fee_is_within_half_a_minor_unit_of_exact(self, case):
        schedule, base = case
        uncapped = FeeSchedule(
            calc_type=PERCENT, flat=schedule.flat, rate_percent=schedule.rate_percent
        )

        fee = fee_compute(uncapped, base).fee

        exact = percent_of(base.amount, schedule.rate_percent)
        half_unit = Decimal(1).scaleb(-base.exponent) / 2
        assert abs(fee.amount - exact) <= half_unit

    @given(case=schedule_and_base(calc_types=(FLAT, PERCENT)), more=MINOR)
    def test_flat_and_percent_fees_never_fall_as_the_amount_grows(self, case, more):
        schedule, base = case
        bigger = base + money(more, base.currency)

        assert fee_compute(schedule, base).fee <= fee_compute(schedule, bigger).fee


class TestFeeJournalLaws:
    @given(case=schedule_and_base())
    def test_a_transfer_with_its_fee_balances_and_the_payer_pays_amount_plus_fee_plus_tax(
        self, case
    ):
        schedule, amount = case
        charge = charge_for(schedule, amount)
        principal = (
            [Leg(PAYER, "D", amount), Leg(PAYEE, "C", amount)] if amount.is_positive() else []
        )

        legs = principal + FeeAssessment(charges=[charge]).legs(PAYER)

        if not legs:
            return
        assert_postable(legs)
        paid = sum(leg.amount.minor for leg in legs if leg.account_id == PAYER)
        assert paid == amount.minor + charge.fee.minor + charge.tax.minor

    @given(case=schedule_and_base())
    def test_fee_plus_tax_plus_net_always_equals_the_gross_of_a_deposit(self, case):
        schedule, gross = case
        charge = charge_for(schedule, gross)
        principal = [Leg(CASH, "D", gross), Leg(PAYER, "C", gross)] if gross.is_positive() else []

        legs = FeeAssessment(charges=[charge]).legs_with(principal, PAYER)

        if not legs:
            return
        assert_postable(legs)
        net = sum(
            leg.amount.minor if leg.side == "C" else -leg.amount.minor
            for leg in legs
            if leg.account_id == PAYER
        )
        assert net + charge.fee.minor + charge.tax.minor == gross.minor

    @given(case=schedule_and_base())
    def test_fee_legs_credit_income_and_tax_exactly_what_the_payer_is_debited(self, case):
        schedule, amount = case
        charge = charge_for(schedule, amount)

        legs = FeeAssessment(charges=[charge]).legs(PAYER)

        credited = {
            account: sum(leg.amount.minor for leg in legs if leg.account_id == account)
            for account in (INCOME, TAX)
        }
        assert credited == {INCOME: charge.fee.minor, TAX: charge.tax.minor}
        assert {leg.purpose for leg in legs} <= {"fee", "fee_tax"}

    @given(case=schedule_and_base(), free_use=st.booleans())
    def test_a_relieved_fee_adds_no_legs(self, case, free_use):
        schedule, amount = case

        charge = charge_for(schedule, amount, free_use=free_use, waived=not free_use)

        assert FeeAssessment(charges=[charge]).legs(PAYER) == []
        assert charge.inputs["relief"] in ("free_use", "waiver")
