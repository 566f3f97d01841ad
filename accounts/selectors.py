"""Reads of CIF, branches, products and accounts.

Lookups by a public identifier (CIF id, account number, SOL code) raise the same typed
``NotFound`` errors as the services, so a missing object reads the same wherever it is met.
Identifiers that cannot exist (wrong shape) are refused before they reach SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from accounts.models import (
    Account,
    Branch,
    Calendar,
    Customer,
    Product,
    ProductTerms,
    StaffProfile,
)
from accounts.services import (
    AccountNotFound,
    BranchNotFound,
    CustomerNotFound,
    product_terms_on,
)
from banksim.core.errors import BusinessRuleViolation, NotFound

__all__ = [
    "ProductOffer",
    "account_get",
    "account_list",
    "branch_get",
    "branch_list",
    "calendar_business_date",
    "customer_account_get",
    "customer_get",
    "customer_list",
    "product_catalog",
    "product_terms_on",
    "teller_cash_account",
]

_CIF_ID = re.compile(r"[A-Z][0-9]{9}", re.ASCII)
_ACCOUNT_NUMBER = re.compile(r"[0-9]{12}", re.ASCII)
_SOL_CODE = re.compile(r"[0-9]{4}", re.ASCII)


class CalendarNotFound(NotFound):
    code = "calendar.not_found"
    title = "Calendar not found"


def calendar_business_date(*, code: str = "MAIN") -> date:
    """Return the current business date of calendar ``code``.

    :raises CalendarNotFound: if the bank has no such calendar
    """
    value = Calendar.objects.filter(code=code).values_list("business_date", flat=True).first()
    if value is None:
        raise CalendarNotFound(f"no calendar {code!r}; seed the bank first")
    return value


# --- customers ------------------------------------------------------------------------


def _customers() -> QuerySet[Customer]:
    return Customer.objects.select_related("home_branch")


def customer_get(*, cif_id: str) -> Customer:
    """Return the customer with this CIF id.

    :raises CustomerNotFound: if there is none
    """
    customer = _customers().filter(cif_id=cif_id).first() if _CIF_ID.fullmatch(cif_id) else None
    if customer is None:
        raise CustomerNotFound(f"no customer {cif_id[:20]!r}")
    return customer


def customer_list(
    *,
    q: str = "",
    national_id: str = "",
    kyc_status: str = "",
    cif_id: str = "",
) -> QuerySet[Customer]:
    """Search customers; ``q`` is a case-insensitive prefix of first, last or legal name."""
    customers = _customers()
    if q:
        customers = customers.filter(
            Q(first_name__istartswith=q)
            | Q(last_name__istartswith=q)
            | Q(legal_name__istartswith=q)
        )
    if national_id:
        customers = customers.filter(national_id=national_id)
    if kyc_status:
        customers = customers.filter(kyc_status=kyc_status)
    if cif_id:
        customers = customers.filter(cif_id=cif_id)
    return customers.order_by("cif_id")


# --- branches and products --------------------------------------------------------------


def branch_list() -> QuerySet[Branch]:
    return Branch.objects.select_related("calendar").order_by("sol_code")


def branch_get(*, sol_code: str) -> Branch:
    """Return the branch with this SOL code.

    :raises BranchNotFound: if there is none
    """
    branch = (
        Branch.objects.filter(sol_code=sol_code).first() if _SOL_CODE.fullmatch(sol_code) else None
    )
    if branch is None:
        raise BranchNotFound(f"no branch {sol_code[:10]!r}")
    return branch


@dataclass(frozen=True)
class ProductOffer:
    """A product with the terms in force on the day asked about (None if it has none yet)."""

    product: Product
    terms: ProductTerms | None


def product_catalog(*, on: date, currency: str = "", scheme_type: str = "") -> list[ProductOffer]:
    """Return products (filtered) with the terms each has in force on ``on``, in two queries."""
    products = Product.objects.select_related("gl_subhead").order_by("code")
    if currency:
        products = products.filter(currency=currency)
    if scheme_type:
        products = products.filter(scheme_type=scheme_type)
    product_list = list(products)
    # DISTINCT ON keeps the first row per product: the latest effective_from not after ``on``,
    # the same rule as product_terms_on.
    terms_in_force = {
        terms.product_id: terms
        for terms in ProductTerms.objects.filter(product__in=product_list, effective_from__lte=on)
        .order_by("product_id", "-effective_from")
        .distinct("product_id")
    }
    offers = []
    for product in product_list:
        terms = terms_in_force.get(product.pk)
        if terms is not None:
            terms.product = product  # already loaded; spares a query per row
        offers.append(ProductOffer(product=product, terms=terms))
    return offers


# --- accounts --------------------------------------------------------------------------


def _accounts() -> QuerySet[Account]:
    return Account.objects.select_related("customer", "branch", "product")


def account_get(*, account_number: str) -> Account:
    """Return the account (customer or office) with this number.

    :raises AccountNotFound: if there is none
    """
    account = (
        _accounts().filter(account_number=account_number).first()
        if _ACCOUNT_NUMBER.fullmatch(account_number)
        else None
    )
    if account is None:
        raise AccountNotFound(f"no account {account_number[:20]!r}")
    return account


def customer_account_get(*, account_number: str) -> Account:
    """Return a *customer* account; office (GL) accounts are not served to the teller API.

    :raises AccountNotFound: if there is no customer account with this number
    """
    account = account_get(account_number=account_number)
    if account.kind != Account.Kind.CUSTOMER:
        raise AccountNotFound(f"no customer account {account_number!r}")
    return account


def account_list(
    *, cif_id: str = "", status: str = "", product_code: str = ""
) -> QuerySet[Account]:
    """Filter accounts by owner's CIF id, status and product code."""
    accounts = _accounts()
    if cif_id:
        accounts = accounts.filter(customer__cif_id=cif_id)
    if status:
        accounts = accounts.filter(status=status)
    if product_code:
        accounts = accounts.filter(product__code=product_code)
    return accounts.order_by("id")


# --- teller cash ---------------------------------------------------------------------------


class NoTellerCashAccount(BusinessRuleViolation):
    code = "ledger.no_teller_cash_account"
    title = "No teller cash account"


def teller_cash_account(*, user: AbstractBaseUser, currency: str) -> Account:
    """Return the cash (till) account that ``user`` takes and pays cash through in ``currency``.

    The user's own till (``StaffProfile.cash_accounts``) wins; otherwise the teller-cash
    office account of the branch they are seated at. Closed tills are never chosen.

    :raises NoTellerCashAccount: if the user has no staff profile, or neither a till nor a
        branch teller-cash account exists in ``currency``
    """
    profile = StaffProfile.objects.filter(user_id=user.pk).first()
    if profile is None:
        raise NoTellerCashAccount("the user is not seated at a branch, so has no cash account")
    open_tills = Account.objects.exclude(status=Account.Status.CLOSED).filter(currency=currency)
    till = profile.cash_accounts.exclude(status=Account.Status.CLOSED).filter(currency=currency)
    account = (
        till.order_by("id").first()
        or open_tills.filter(
            kind=Account.Kind.OFFICE,
            office_role=Account.OfficeRole.TELLER_CASH,
            branch_id=profile.branch_id,
        )
        .order_by("id")
        .first()
    )
    if account is None:
        raise NoTellerCashAccount(
            f"no teller cash account in {currency} for this user or their branch",
            errors={"currency": [f"no teller cash account in {currency}"]},
        )
    return account
