"""Seed the bank's static data and the demo bank from the JSON files in ``accounts/seed/``.

Design overview: the chart of accounts, branches, products (with their terms) and the office
accounts every branch needs are *data*, read from ``accounts/seed/*.json``, not constants in
code, so a bank changes them by editing a file. ``bank_seed_static`` creates whatever of that
data is missing and leaves existing rows alone (a bank may have edited them since).
``demo_seed`` adds the demo staff and customers on top. Both are safe to run again: rows are
looked up by their natural keys (GL code, SOL, product code, national id, username) and only
what is missing is created.

Customer accounts are opened with zero balances by ``accounts.services`` and funded in a
separate, last step that posts teller cash deposits through the ledger; nothing here writes a
balance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts import services
from accounts.models import (
    Account,
    Branch,
    Calendar,
    Customer,
    GLSubHead,
    Product,
    ProductTerms,
    StaffProfile,
)
from banksim.core.errors import InvalidInput
from banksim.core.money import Money
from ledger.models import Journal
from ledger.services import Movement, movement_execute

SEED_DIR = Path(__file__).resolve().parent / "seed"


class SeedDataInvalid(InvalidInput):
    code = "seed.data_invalid"
    title = "Seed data invalid"


@dataclass(frozen=True)
class StaticSeedResult:
    calendar: Calendar
    branches: dict[str, Branch]
    products: dict[str, Product]
    # Keyed by (SOL code, office role, currency).
    office_accounts: dict[tuple[str, str, str], Account]
    created: int

    def office_account(self, *, sol_code: str, role: str, currency: str) -> Account:
        return self.office_accounts[(sol_code, role, currency)]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    token: str
    # Only known for users created by this run; earlier passwords are stored hashed.
    password: str | None


@dataclass(frozen=True)
class DemoAccount:
    account_id: int
    account_number: str
    cif_id: str
    holder: str
    product_code: str
    opening_deposit: Money


@dataclass(frozen=True)
class DemoSeedResult:
    static: StaticSeedResult
    logins: list[DemoLogin]
    opened: list[DemoAccount]
    # Journals of the opening deposits made by this run.
    funding_journal_ids: list[int] = field(default_factory=list)
    # Deposits that were entered for approval instead of posted, if any.
    funding_notice: str = ""

    @property
    def created_anything(self) -> bool:
        return bool(self.static.created or self.opened or any(x.password for x in self.logins))


def _load(seed_dir: Path, name: str) -> dict[str, Any]:
    path = seed_dir / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeedDataInvalid(f"cannot read seed file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SeedDataInvalid(f"{path} must hold a JSON object")
    return data


def _money(text: str, currency: str, *, where: str) -> Money:
    # The same strict parser as the API: seed files are input too.
    try:
        return Money.parse(text, currency)
    except InvalidInput as exc:
        raise SeedDataInvalid(f"{where}: {exc.detail}") from exc


def _seed_calendar_and_branches(
    *, data: dict[str, Any], business_date: date
) -> tuple[Calendar, dict[str, Branch], int]:
    created = 0
    spec = data["calendar"]
    calendar, made = Calendar.objects.get_or_create(
        code=spec["code"],
        defaults={
            "name": spec["name"],
            "business_date": business_date,
            "weekend_days": spec.get("weekend_days", "6,7"),
        },
    )
    created += made
    branches: dict[str, Branch] = {}
    for row in data["branches"]:
        branch, made = Branch.objects.get_or_create(
            sol_code=row["sol_code"], defaults={"name": row["name"], "calendar": calendar}
        )
        created += made
        branches[branch.sol_code] = branch
    return calendar, branches, created


def _seed_chart(*, data: dict[str, Any]) -> tuple[dict[str, GLSubHead], int]:
    created = 0
    heads: dict[str, GLSubHead] = {}
    categories = set(GLSubHead.Category.values)
    for row in data["gl_subheads"]:
        if row["category"] not in categories:
            raise SeedDataInvalid(f"GL sub-head {row['code']}: unknown category {row['category']}")
        head, made = GLSubHead.objects.get_or_create(
            code=row["code"], defaults={"name": row["name"], "category": row["category"]}
        )
        created += made
        heads[head.code] = head
    return heads, created


def _seed_products(
    *, data: dict[str, Any], heads: dict[str, GLSubHead]
) -> tuple[dict[str, Product], int]:
    created = 0
    products: dict[str, Product] = {}
    for row in data["products"]:
        code, currency = row["code"], row["currency"]
        if row["gl_subhead"] not in heads:
            raise SeedDataInvalid(f"product {code}: GL sub-head {row['gl_subhead']} is not seeded")
        product, made = Product.objects.get_or_create(
            code=code,
            defaults={
                "name": row["name"],
                "scheme_type": row["scheme_type"],
                "currency": currency,
                "gl_subhead": heads[row["gl_subhead"]],
            },
        )
        created += made
        products[code] = product
        for terms in row["terms"]:
            where = f"product {code} terms from {terms['effective_from']}"
            _, made = ProductTerms.objects.get_or_create(
                product=product,
                effective_from=date.fromisoformat(terms["effective_from"]),
                defaults={
                    "min_balance_minor": _money(terms["min_balance"], currency, where=where).minor,
                    "overdraft_allowed": terms["overdraft_allowed"],
                    "overdraft_limit_minor": _money(
                        terms["overdraft_limit"], currency, where=where
                    ).minor,
                    "credit_interest_rate": terms["credit_interest_rate"],
                    "debit_interest_rate": terms["debit_interest_rate"],
                    "accrual_basis": terms["accrual_basis"],
                    "dormancy_days": terms["dormancy_days"],
                },
            )
            created += made
    return products, created


def _seed_office_accounts(
    *,
    data: dict[str, Any],
    branches: dict[str, Branch],
    products: dict[str, Product],
    business_date: date,
    now: datetime,
) -> tuple[dict[tuple[str, str, str], Account], int]:
    created = 0
    accounts: dict[tuple[str, str, str], Account] = {}
    for product_code in data["office_products"]:
        if product_code not in products:
            raise SeedDataInvalid(f"office product {product_code} is not seeded")
    for sol_code, branch in branches.items():
        for product_code in data["office_products"]:
            currency = products[product_code].currency
            for row in data["roles"]:
                role = row["role"]
                existing = Account.objects.filter(
                    kind=Account.Kind.OFFICE, branch=branch, office_role=role, currency=currency
                ).first()
                if existing is None:
                    existing = services.office_account_open(
                        product_code=product_code,
                        branch_id=branch.pk,
                        office_role=role,
                        title=f"{row['title']} {currency} ({branch.name})",
                        gl_subhead_code=row["gl_subhead"],
                        business_date=business_date,
                        now=now,
                    )
                    created += 1
                accounts[(sol_code, role, currency)] = existing
    return accounts, created


def bank_seed_static(
    *, business_date: date, now: datetime, seed_dir: Path = SEED_DIR
) -> StaticSeedResult:
    """Create the calendar, branches, chart of accounts, products and office accounts.

    Only missing rows are created; existing ones are left as they are. A new calendar starts at
    ``business_date``; an existing calendar keeps its own date.

    :raises SeedDataInvalid: if a seed file is unreadable or refers to something it does not
        define
    """
    branch_data = _load(seed_dir, "branches.json")
    chart_data = _load(seed_dir, "chart_of_accounts.json")
    product_data = _load(seed_dir, "products.json")
    office_data = _load(seed_dir, "office_accounts.json")
    with transaction.atomic():
        calendar, branches, made_branches = _seed_calendar_and_branches(
            data=branch_data, business_date=business_date
        )
        heads, made_heads = _seed_chart(data=chart_data)
        products, made_products = _seed_products(data=product_data, heads=heads)
        office, made_office = _seed_office_accounts(
            data=office_data,
            branches=branches,
            products=products,
            business_date=calendar.business_date,
            now=now,
        )
    return StaticSeedResult(
        calendar=calendar,
        branches=branches,
        products=products,
        office_accounts=office,
        created=made_branches + made_heads + made_products + made_office,
    )


def _seed_user(
    *,
    username: str,
    role: str,
    new_password: Callable[[str], str],
    superuser: bool = False,
) -> tuple[AbstractBaseUser, DemoLogin]:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    password: str | None = None
    if user is None:
        password = new_password(username)
        if superuser:
            user = user_model.objects.create_superuser(username=username, password=password)
        else:
            user = user_model.objects.create_user(username=username, password=password)
    if not superuser:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    token, _ = Token.objects.get_or_create(user=user)
    return user, DemoLogin(username=username, role=role, token=token.key, password=password)


def _seed_staff(
    *,
    data: dict[str, Any],
    static: StaticSeedResult,
    new_password: Callable[[str], str],
) -> tuple[dict[str, AbstractBaseUser], list[DemoLogin]]:
    users: dict[str, AbstractBaseUser] = {}
    logins: list[DemoLogin] = []
    for row in data["staff"]:
        user, login = _seed_user(
            username=row["username"], role=row["role"], new_password=new_password
        )
        users[row["role"]] = user
        logins.append(login)
        branch = static.branches[row["branch"]]
        profile, _ = StaffProfile.objects.get_or_create(user=user, defaults={"branch": branch})
        if row["till"]:
            # A teller's till: the branch's teller cash account in every seeded currency.
            profile.cash_accounts.add(
                *(
                    account
                    for (sol, role, _), account in static.office_accounts.items()
                    if sol == branch.sol_code and role == Account.OfficeRole.TELLER_CASH
                )
            )
    _, admin_login = _seed_user(
        username=data["superuser"], role="superuser", new_password=new_password, superuser=True
    )
    logins.append(admin_login)
    return users, logins


def _seed_customers(
    *,
    data: dict[str, Any],
    static: StaticSeedResult,
    maker: AbstractBaseUser,
    checker: AbstractBaseUser,
    business_date: date,
    now: datetime,
) -> list[DemoAccount]:
    opened: list[DemoAccount] = []
    for row in data["customers"]:
        branch = static.branches[row["branch"]]
        customer = Customer.objects.filter(
            national_id_type=row["national_id_type"], national_id=row["national_id"]
        ).first()
        if customer is None:
            customer = services.customer_create(
                data=services.CustomerData(
                    customer_type=row["customer_type"],
                    first_name=row.get("first_name", ""),
                    last_name=row.get("last_name", ""),
                    legal_name=row.get("legal_name", ""),
                    birth_date=date.fromisoformat(row["birth_date"]),
                    national_id_type=row["national_id_type"],
                    national_id=row["national_id"],
                    email=row.get("email", ""),
                    phone=row.get("phone", ""),
                    segment=row.get("segment", Customer.Segment.RETAIL),
                    home_branch_id=branch.pk,
                ),
                actor=maker,
                now=now,
            )
        if customer.kyc_status == Customer.KycStatus.PENDING:
            customer = services.customer_kyc_set(
                customer_id=customer.pk,
                status=Customer.KycStatus.VERIFIED,
                actor=checker,
                business_date=business_date,
                reason="demo seed: documents verified",
            )
        for spec in row["accounts"]:
            product = static.products[spec["product"]]
            if Account.objects.filter(customer=customer, product=product).exists():
                continue
            account = services.account_open(
                customer_id=customer.pk,
                product_code=product.code,
                branch_id=branch.pk,
                actor=maker,
                business_date=business_date,
                now=now,
            )
            opened.append(
                DemoAccount(
                    account_id=account.pk,
                    account_number=account.account_number,
                    cif_id=customer.cif_id,
                    holder=customer.display_name,
                    product_code=product.code,
                    opening_deposit=_money(
                        spec["opening_deposit"],
                        product.currency,
                        where=f"opening deposit of {customer.display_name} {product.code}",
                    ),
                )
            )
    return opened


def _fund_demo_accounts(
    *,
    opened: list[DemoAccount],
    static: StaticSeedResult,
    teller: AbstractBaseUser,
    business_date: date,
    now: datetime,
) -> tuple[list[int], str]:
    """Post each opening deposit as a teller cash deposit (till Dr, customer account Cr).

    Each deposit is its own ledger transaction, made the way a teller would make it.
    """
    journal_ids: list[int] = []
    notices: list[str] = []
    for demo in opened:
        account = Account.objects.select_related("branch").get(pk=demo.account_id)
        till = static.office_account(
            sol_code=account.branch.sol_code,
            role=Account.OfficeRole.TELLER_CASH,
            currency=account.currency,
        )
        result = movement_execute(
            movement=Movement(
                txn_type=Journal.TxnType.CASH_DEPOSIT,
                debit_account_id=till.pk,
                credit_account_id=account.pk,
                amount=demo.opening_deposit,
                channel=Journal.Channel.TELLER,
                narration="Demo opening cash deposit",
            ),
            actor=teller,
            business_date=business_date,
            now=now,
        )
        journal_ids.append(result.journal.pk)
        if not result.posted:
            # Above the maker-checker threshold the deposit waits for a supervisor.
            notices.append(
                f"{demo.account_number}: deposit of {demo.opening_deposit} awaits a checker "
                f"({result.journal.txn_id})"
            )
    return journal_ids, "; ".join(notices)


def demo_seed(
    *,
    business_date: date,
    now: datetime,
    new_password: Callable[[str], str],
    seed_dir: Path = SEED_DIR,
) -> DemoSeedResult:
    """Seed the demo bank: static data, staff with tokens, verified customers, funded accounts.

    Safe to run again: only missing rows are created, and only accounts opened by this run are
    funded. ``new_password(username)`` is asked for the password of each user this run creates.
    Staff and customers are committed first; each opening deposit is then its own ledger
    posting, so the caller must not hold a transaction.

    :raises SeedDataInvalid: if a seed file is unreadable or inconsistent
    """
    demo_data = _load(seed_dir, "demo.json")
    with transaction.atomic(durable=True):
        static = bank_seed_static(business_date=business_date, now=now, seed_dir=seed_dir)
        # A calendar that already existed keeps its own business date.
        business_date = static.calendar.business_date
        users, logins = _seed_staff(data=demo_data, static=static, new_password=new_password)
        opened = _seed_customers(
            data=demo_data,
            static=static,
            maker=users["teller"],
            checker=users["supervisor"],
            business_date=business_date,
            now=now,
        )
    journal_ids, notice = _fund_demo_accounts(
        opened=opened,
        static=static,
        teller=users["teller"],
        business_date=business_date,
        now=now,
    )
    return DemoSeedResult(
        static=static,
        logins=logins,
        opened=opened,
        funding_journal_ids=journal_ids,
        funding_notice=notice,
    )
