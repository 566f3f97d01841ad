"""What the fee engine decided for one movement, and the ledger legs that book it.

Pure (no database): ``fees.services.fee_assess`` builds these from the rule in force; the
posting path turns them into legs of the *same* journal as the principal, so one commit covers
both, a reversal mirrors both, and the funds check sees amount + fee + tax on the payer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from banksim.core.money import Money
from ledger.posting import Leg

FEE_PURPOSE = "fee"
TAX_PURPOSE = "fee_tax"


@dataclass(frozen=True, slots=True)
class UsageKey:
    """The free-use counter a posting incremented (so a reversal can give the use back)."""

    rule_id: int
    account_id: int
    period_start: date


@dataclass(frozen=True)
class FeeCharge:
    """One fee applied."""

    rule_id: int
    rule_version: int  # the rule's ``version`` when it was applied; its history has the row
    event: str
    base_amount: Money  # the amount the fee was computed on
    fee: Money  # after caps and relief (zero if waived or free)
    tax: Money
    waived_by: int | None  # waiver id
    free_use: bool  # inside the free first N of the period
    income_account_id: int
    tax_account_id: int | None
    inputs: dict[str, Any]  # what a statement needs to explain it (calc type, rate, tier...)
    usage: UsageKey | None = None  # set when this assessment counted a use
    # The two GL accounts' numbers where the assessment read them (not in the details).
    income_account_number: str | None = None
    tax_account_number: str | None = None

    def to_details(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "event": self.event,
            "currency": self.fee.currency,
            "base_amount": self.base_amount.to_wire(),
            "fee": self.fee.to_wire(),
            "tax": self.tax.to_wire(),
            "waived_by": self.waived_by,
            "free_use": self.free_use,
            "income_account_id": self.income_account_id,
            "tax_account_id": self.tax_account_id,
            "inputs": self.inputs,
            "usage": None
            if self.usage is None
            else {
                "rule_id": self.usage.rule_id,
                "account_id": self.usage.account_id,
                "period_start": self.usage.period_start.isoformat(),
            },
        }


@dataclass(frozen=True)
class FeeAssessment:
    charges: list[FeeCharge]

    def fee_total(self, currency: str) -> Money:
        return sum((c.fee for c in self.charges), Money.zero(currency))

    def tax_total(self, currency: str) -> Money:
        return sum((c.tax for c in self.charges), Money.zero(currency))

    def legs(self, payer_account_id: int) -> list[Leg]:
        """Return D payer / C income for each fee and D payer / C tax GL for each tax.

        Zero amounts (free, waived, zero-rated) produce no legs.
        """
        out: list[Leg] = []
        for charge in self.charges:
            if charge.fee.is_positive():
                out.append(Leg(payer_account_id, "D", charge.fee, FEE_PURPOSE))
                out.append(Leg(charge.income_account_id, "C", charge.fee, FEE_PURPOSE))
            if charge.tax.is_positive():
                assert charge.tax_account_id is not None, "a taxed rule names its tax account"
                out.append(Leg(payer_account_id, "D", charge.tax, TAX_PURPOSE))
                out.append(Leg(charge.tax_account_id, "C", charge.tax, TAX_PURPOSE))
        return out

    def account_numbers(self) -> dict[int, str]:
        """The numbers of the GL accounts the fee and tax legs credit, where known."""
        numbers: dict[int, str] = {}
        for charge in self.charges:
            if charge.income_account_number is not None:
                numbers[charge.income_account_id] = charge.income_account_number
            if charge.tax_account_id is not None and charge.tax_account_number is not None:
                numbers[charge.tax_account_id] = charge.tax_account_number
        return numbers

    def legs_with(self, principal: list[Leg], payer_account_id: int) -> list[Leg]:
        """Return the principal legs plus the fee legs, as one balanced journal.

        A journal may not debit and credit one account, so when the principal *credits* the
        payer (a cash deposit charged a fee) the fee and tax are deducted from that credit
        instead of debited separately: gross = net credited + fee + tax. If they exceed the
        credit, the payer's leg becomes a debit of the difference.
        """
        fee_legs = self.legs(payer_account_id)
        payer_debit = sum(
            leg.amount.minor
            for leg in fee_legs
            if leg.account_id == payer_account_id and leg.side == "D"
        )
        credited = [
            i
            for i, leg in enumerate(principal)
            if leg.account_id == payer_account_id and leg.side == "C"
        ]
        if not payer_debit or not credited:
            return [*principal, *fee_legs]
        index = credited[0]
        leg = principal[index]
        net = leg.amount.minor - payer_debit
        currency = leg.amount.currency
        rest = [leg for leg in fee_legs if leg.account_id != payer_account_id]
        merged = list(principal)
        if net > 0:
            merged[index] = Leg(leg.account_id, "C", Money.from_minor(net, currency), leg.purpose)
        elif net < 0:
            merged[index] = Leg(leg.account_id, "D", Money.from_minor(-net, currency), FEE_PURPOSE)
        else:
            del merged[index]
        return [*merged, *rest]

    def details(self) -> list[dict[str, Any]]:
        """JSON-serialisable record for ``Journal.details["fees"]``."""
        return [charge.to_details() for charge in self.charges]
