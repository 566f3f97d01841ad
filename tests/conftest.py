"""Shared fixtures: a small bank (calendar, branch, products, office accounts) and staff.

Everything runs against the machine's real PostgreSQL. Accounts are opened with the
accounts services and funded with ledger postings; no fixture writes a balance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Account, Branch, Customer, GLSubHead, Product
from tests.factories import (
    BUSINESS_DATE,
    BranchFactory,
    CalendarFactory,
    CustomerFactory,
    GLSubHeadFactory,
    ProductFactory,
    ProductTermsFactory,
    UserFactory,
)


@dataclass
class Bank:
    """The static data every test bank has. Office accounts are keyed by (role, currency)."""

    business_date: dt.date
    branch: Branch
    products: dict[str, Product]
    office: dict[tuple[str, str], Account]

    def office_account(self, role: str, currency: str = "USD") -> Account:
        return self.office[(role, currency)]


OFFICE_ROLES = (
    "teller_cash",
    "vault_cash",
    "fee_income",
    "tax_payable",
    "interest_expense",
    "interest_income",
    "suspense",
)


# Office roles and the GL sub-head (code, name, category) each books under.
OFFICE_SUBHEADS: dict[str, tuple[str, str, str]] = {
    "teller_cash": ("10200", "Teller cash", GLSubHead.Category.ASSET),
    "vault_cash": ("10100", "Cash", GLSubHead.Category.ASSET),
    "fee_income": ("40100", "Fee income", GLSubHead.Category.INCOME),
    "tax_payable": ("20900", "Tax payable", GLSubHead.Category.LIABILITY),
    "interest_expense": ("50100", "Interest expense", GLSubHead.Category.EXPENSE),
    "interest_income": ("40200", "Interest income", GLSubHead.Category.INCOME),
    "suspense": ("19900", "Suspense", GLSubHead.Category.ASSET),
}


def build_bank() -> Bank:
    now = timezone.now()
    for code, name, category in OFFICE_SUBHEADS.values():
        GLSubHeadFactory(code=code, name=name, category=category)
    CalendarFactory(code="MAIN", business_date=BUSINESS_DATE)
    branch = BranchFactory(sol_code="0001", name="Head office")
    deposits = GLSubHeadFactory(
        code="20100", name="Savings deposits", category=GLSubHead.Category.LIABILITY
    )
    current = GLSubHeadFactory(
        code="20200", name="Current deposits", category=GLSubHead.Category.LIABILITY
    )
    cash = GLSubHeadFactory(code="10100", name="Cash", category=GLSubHead.Category.ASSET)
    products: dict[str, Product] = {}
    office: dict[tuple[str, str], Account] = {}
    for currency in ("USD", "JPY", "KWD"):
        sba = ProductFactory(
            code=f"SBA-{currency}",
            name=f"Savings {currency}",
            scheme_type=Product.SchemeType.SAVINGS,
            currency=currency,
            gl_subhead=deposits,
        )
        ProductTermsFactory(product=sba)
        caa = ProductFactory(
            code=f"CAA-{currency}",
            name=f"Current {currency}",
            scheme_type=Product.SchemeType.CURRENT,
            currency=currency,
            gl_subhead=current,
        )
        ProductTermsFactory(
            product=caa,
            overdraft_allowed=True,
            overdraft_limit_minor=50_000 * 10 ** {"USD": 2, "JPY": 0, "KWD": 3}[currency],
        )
        oab = ProductFactory(
            code=f"OAB-{currency}",
            name=f"Office {currency}",
            scheme_type=Product.SchemeType.OFFICE,
            currency=currency,
            gl_subhead=cash,
        )
        ProductTermsFactory(product=oab)
        products.update({sba.code: sba, caa.code: caa, oab.code: oab})
        for role in OFFICE_ROLES:
            office[(role, currency)] = account_services.office_account_open(
                product_code=oab.code,
                branch_id=branch.pk,
                office_role=role,
                title=f"{role} {currency}",
                gl_subhead_code=OFFICE_SUBHEADS[role][0],
                business_date=BUSINESS_DATE,
                now=now,
            )
    return Bank(business_date=BUSINESS_DATE, branch=branch, products=products, office=office)


@pytest.fixture
def bank(db: None) -> Bank:
    return build_bank()


@pytest.fixture
def teller(db: None) -> User:
    return UserFactory(username="teller1", roles=["teller"])


@pytest.fixture
def supervisor(db: None) -> User:
    return UserFactory(username="super1", roles=["supervisor"])


@pytest.fixture
def auditor(db: None) -> User:
    return UserFactory(username="audit1", roles=["auditor"])


@pytest.fixture
def make_client(db: None) -> Callable[[User | None], APIClient]:
    def _make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _make


@pytest.fixture
def open_account(bank: Bank) -> Callable[..., Account]:
    """Open a customer account (verified customer made on the fly unless one is given)."""

    def _open(product_code: str = "SBA-USD", customer: Customer | None = None) -> Account:
        customer = customer or CustomerFactory(home_branch=bank.branch)
        return account_services.account_open(
            customer_id=customer.pk,
            product_code=product_code,
            branch_id=bank.branch.pk,
            actor=None,
            business_date=bank.business_date,
            now=timezone.now(),
        )

    return _open


@pytest.fixture
def post_movement(bank: Bank) -> Callable[..., object]:
    """Post a movement through the ledger service on the bank's business date."""
    from banksim.core.money import Money
    from ledger.services import Movement, movement_execute

    def _post(
        txn_type: str,
        debit: Account,
        credit: Account,
        amount: str,
        actor: User | None = None,
        channel: str = "teller",
    ) -> object:
        movement = Movement(
            txn_type=txn_type,
            debit_account_id=debit.pk,
            credit_account_id=credit.pk,
            amount=Money.parse(amount, debit.currency),
            channel=channel,
        )
        return movement_execute(
            movement=movement, actor=actor, business_date=bank.business_date, now=timezone.now()
        )

    return _post


@pytest.fixture
def funded_account(
    bank: Bank, open_account: Callable[..., Account], post_movement: Callable[..., object]
) -> Callable[..., Account]:
    """Open an account and fund it with a cash deposit through the ledger."""

    def _funded(amount: str, product_code: str = "SBA-USD") -> Account:
        account = open_account(product_code)
        cash = bank.office_account("teller_cash", account.currency)
        post_movement("cash_deposit", cash, account, amount)
        return account

    return _funded


@pytest.fixture
def fee_rule(bank: Bank) -> Callable[..., object]:
    """Create a fee rule through the fee service (default: flat 1.00 on USD transfers out,
    credited to the branch's fee income, in force from the bank's business date). Amounts and
    rates may be given as strings: ``fee_rule(calc_type="percent", rate_percent="0.5")``."""
    from decimal import Decimal

    from banksim.core.money import Money
    from fees.services import fee_rule_create
    from fees.specs import FeeRuleSpec

    def _make(**overrides: object) -> object:
        currency = str(overrides.get("currency", "USD"))
        fields: dict[str, object] = {
            "name": "Transfer fee",
            "event": "transfer_out",
            "currency": currency,
            "calc_type": "flat",
            "flat_fee": "1.00" if overrides.get("calc_type", "flat") == "flat" else None,
            "income_account_id": bank.office_account("fee_income", currency).pk,
            "effective_from": bank.business_date,
            **overrides,
        }
        for name in ("flat_fee", "min_fee", "max_fee"):
            if isinstance(fields.get(name), str):
                fields[name] = Money.parse(fields[name], currency)
        for name in ("rate_percent", "tax_rate_percent"):
            if isinstance(fields.get(name), str):
                fields[name] = Decimal(fields[name])
        if fields.get("tax_rate_percent") and "tax_account_id" not in overrides:
            fields["tax_account_id"] = bank.office_account("tax_payable", currency).pk
        return fee_rule_create(spec=FeeRuleSpec(**fields), actor=None)  # type: ignore[arg-type]

    return _make
