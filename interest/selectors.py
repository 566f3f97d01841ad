"""Reads the interest steps need: the accrual window of a business date, terms in force,
the office accounts interest books against, and what has accrued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from accounts.models import Account, Calendar, Holiday, Product, ProductTerms
from banksim.core.money import Money
from interest.daycount import split_units
from interest.models import InterestAccrual


def next_business_date(*, calendar_code: str, after: date) -> date:
    """Return the first day after ``after`` that is neither a weekend day nor a holiday."""
    calendar = Calendar.objects.get(code=calendar_code)
    weekend = {int(d) for d in calendar.weekend_days.split(",") if d.strip()}
    if len(weekend) >= 7:
        raise ValueError(f"calendar {calendar_code} has no business days")
    holidays = set(
        Holiday.objects.filter(
            calendar=calendar, date__gt=after, date__lte=after + timedelta(days=400)
        ).values_list("date", flat=True)
    )
    day = after + timedelta(days=1)
    while day.isoweekday() in weekend or day in holidays:
        day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class AccrualWindow:
    """What the EOD of ``business_date`` accrues and whether it capitalises."""

    business_date: date
    accrue_to: date  # last calendar day accrued at today's closing balance
    month_end: bool  # the last business day of its month: capitalise and charge monthly fees


def accrual_window(*, calendar_code: str, business_date: date) -> AccrualWindow:
    """Return the accrual window of a business date.

    Today's closing balance stands until the next business day, so it accrues every calendar
    day up to the day before that one, except that a month's interest never runs into the
    next month: on the last business day of a month, accrual stops at the month's last day,
    and the days before the next month's first business day accrue at that day's EOD.
    """
    following = next_business_date(calendar_code=calendar_code, after=business_date)
    month_end = following.month != business_date.month or following.year != business_date.year
    if month_end:
        first_of_next = (business_date.replace(day=28) + timedelta(days=4)).replace(day=1)
        accrue_to = first_of_next - timedelta(days=1)
    else:
        accrue_to = following - timedelta(days=1)
    return AccrualWindow(business_date=business_date, accrue_to=accrue_to, month_end=month_end)


@dataclass(frozen=True)
class TermsInForce:
    product_id: int
    credit_rate: object  # Decimal, annual percent
    debit_rate: object
    basis: str


def interest_terms_in_force(*, on: date) -> list[TermsInForce]:
    """Return the rates and basis of each customer product on ``on`` (the latest row)."""
    rows = (
        ProductTerms.objects.filter(effective_from__lte=on)
        .exclude(product__scheme_type=Product.SchemeType.OFFICE)
        .order_by("product_id", "-effective_from")
        .distinct("product_id")
        .values_list("product_id", "credit_interest_rate", "debit_interest_rate", "accrual_basis")
    )
    return [TermsInForce(p, c, d, b) for p, c, d, b in rows]


@dataclass(frozen=True)
class InterestOffices:
    branch_id: int
    currency: str
    expense_account_id: int  # debited with credit interest paid to customers
    income_account_id: int  # credited with overdraft interest charged
    # credited with tax withheld from credit interest; None: the branch has none in this
    # currency, and accounts whose product withholds keep their interest accrued until it does
    tax_payable_account_id: int | None = None


def interest_offices() -> list[InterestOffices]:
    """Return, per branch and currency, the office accounts interest books against.

    A branch and currency without both accounts is left out; its customers' interest stays
    accrued (and visible) until the accounts are opened.
    """
    found: dict[tuple[int, str], dict[str, int]] = {}
    rows = Account.objects.filter(
        kind=Account.Kind.OFFICE,
        office_role__in=[
            Account.OfficeRole.INTEREST_EXPENSE,
            Account.OfficeRole.INTEREST_INCOME,
            Account.OfficeRole.TAX_PAYABLE,
        ],
    ).exclude(status=Account.Status.CLOSED)
    for account_id, branch_id, currency, role in rows.order_by("id").values_list(
        "id", "branch_id", "currency", "office_role"
    ):
        found.setdefault((branch_id, currency), {}).setdefault(role, account_id)
    return [
        InterestOffices(
            branch_id=branch_id,
            currency=currency,
            expense_account_id=roles[Account.OfficeRole.INTEREST_EXPENSE],
            income_account_id=roles[Account.OfficeRole.INTEREST_INCOME],
            tax_payable_account_id=roles.get(Account.OfficeRole.TAX_PAYABLE),
        )
        for (branch_id, currency), roles in sorted(found.items())
        if Account.OfficeRole.INTEREST_EXPENSE in roles
        and Account.OfficeRole.INTEREST_INCOME in roles
    ]


@dataclass(frozen=True)
class AccruedInterest:
    accrued_through: date
    credit: Money  # whole minor units accrued, not yet posted
    debit: Money
    credit_units: int  # exact, in 1 / UNITS_PER_MINOR of a minor unit
    debit_units: int


def accrued_interest(*, account: Account) -> AccruedInterest | None:
    """Return what has accrued on ``account`` and is not yet posted (None: never accrued)."""
    row = InterestAccrual.objects.filter(account=account).first()
    if row is None:
        return None
    credit_units, debit_units = int(row.credit_units), int(row.debit_units)
    return AccruedInterest(
        accrued_through=row.accrued_through,
        credit=Money.from_minor(split_units(credit_units)[0], account.currency),
        debit=Money.from_minor(split_units(debit_units)[0], account.currency),
        credit_units=credit_units,
        debit_units=debit_units,
    )
