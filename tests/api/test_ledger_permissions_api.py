"""Who may call which ledger endpoint: every endpoint against anonymous, a user with no bank
role, teller, supervisor and auditor.

Refusals are decided before any object is looked up, so they are checked against placeholder
ids without a bank; allowed calls run against a real scenario and must succeed.
"""

from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from banksim.core.money import Money
from ledger import services
from ledger.models import ApprovalThreshold
from tests.api.ledger_support import LedgerRows, assert_problem, new_key, seat
from tests.factories import UserFactory

T, S, A = "teller", "supervisor", "auditor"
PRINCIPALS = ("anonymous", "no_role", T, S, A)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # placeholders filled from the scenario
    allowed: tuple[str, ...]
    success: int
    body: dict[str, Any] | None = None
    idempotent: bool = False


ENDPOINTS = [
    Endpoint(
        "transfer",
        "post",
        "/api/v1/transfers",
        (T, S),
        201,
        {
            "debit_account": "{payer}",
            "credit_account": "{payee}",
            "amount": "1.00",
            "currency": "USD",
        },
        idempotent=True,
    ),
    Endpoint(
        "deposit",
        "post",
        "/api/v1/deposits",
        (T, S),
        201,
        {"account": "{payee}", "amount": "1.00", "currency": "USD"},
        idempotent=True,
    ),
    Endpoint(
        "withdrawal",
        "post",
        "/api/v1/withdrawals",
        (T, S),
        201,
        {"account": "{payer}", "amount": "1.00", "currency": "USD"},
        idempotent=True,
    ),
    Endpoint(
        "adjustment",
        "post",
        "/api/v1/adjustments",
        (S,),
        201,
        {
            "debit_account": "{suspense}",
            "credit_account": "{fee_income}",
            "amount": "1.00",
            "currency": "USD",
        },
        idempotent=True,
    ),
    Endpoint(
        "reverse",
        "post",
        "/api/v1/transactions/{posted}/reverse",
        (S,),
        201,
        {"reason": "keyed twice"},
        idempotent=True,
    ),
    Endpoint(
        "approve",
        "post",
        "/api/v1/transactions/{entered}/approve",
        (S,),
        200,
        {},
        idempotent=True,
    ),
    Endpoint(
        "reject",
        "post",
        "/api/v1/transactions/{entered}/reject",
        (S,),
        200,
        {"reason": "no documents"},
    ),
    Endpoint(
        "hold place",
        "post",
        "/api/v1/accounts/{payer}/holds",
        (T, S),
        201,
        {"amount": "1.00", "currency": "USD", "reason": "lien"},
        idempotent=True,
    ),
    Endpoint("hold list", "get", "/api/v1/accounts/{payer}/holds", (T, S, A), 200),
    Endpoint("hold release", "post", "/api/v1/holds/{hold}/release", (T, S), 200, {}),
    Endpoint("transaction", "get", "/api/v1/transactions/{posted}", (T, S, A), 200),
    Endpoint("transactions", "get", "/api/v1/transactions?status=entered", (T, S, A), 200),
    Endpoint("balance", "get", "/api/v1/accounts/{payer}/balance", (T, S, A), 200),
    Endpoint(
        "balance as of", "get", "/api/v1/accounts/{payer}/balance?as_of=2026-11-30", (T, S, A), 200
    ),
    Endpoint("statement", "get", "/api/v1/accounts/{payer}/statement", (T, S, A), 200),
    Endpoint("trial balance", "get", "/api/v1/reports/trial-balance", (T, S, A), 200),
]

PLACEHOLDERS = {
    "payer": "000100000001",
    "payee": "000100000002",
    "suspense": "000100000003",
    "fee_income": "000100000004",
    "posted": "T000000000001",
    "entered": "T000000000002",
    "hold": "1",
}

CASES = [
    pytest.param(endpoint, principal, id=f"{endpoint.name}-{principal}")
    for endpoint in ENDPOINTS
    for principal in PRINCIPALS
]


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    return value


def call(client, endpoint: Endpoint, names: dict[str, str]):
    path = fill(endpoint.path, names)
    if endpoint.method == "get":
        return client.get(path)
    headers = {"HTTP_IDEMPOTENCY_KEY": new_key()} if endpoint.idempotent else {}
    return client.post(path, fill(endpoint.body, names), format="json", **headers)


def user_for(principal: str):
    if principal == "anonymous":
        return None
    roles = [] if principal == "no_role" else [principal]
    return UserFactory(username=f"matrix-{principal}", roles=roles)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint", "principal"), [c for c in CASES if c.values[1] not in c.values[0].allowed]
)
def test_a_refused_principal_gets_401_or_403_and_nothing_is_written(
    make_client, endpoint, principal
):
    client = make_client(user_for(principal))
    before = LedgerRows.now()

    response = call(client, endpoint, PLACEHOLDERS)

    if principal == "anonymous":
        assert_problem(response, 401, "auth.not_authenticated")
    else:
        assert_problem(response, 403, "auth.forbidden")
    assert LedgerRows.now() == before


@pytest.fixture
def scenario(bank, funded_account, open_account, post_movement):
    """Real objects for every placeholder: accounts, a posted and an entered transfer, a hold."""
    payer = funded_account("5000.00")
    payee = open_account()
    posted = post_movement("transfer", payer, payee, "10.00").journal
    maker = UserFactory(username="matrix-maker", roles=["teller"])
    ApprovalThreshold.objects.create(currency="USD", channel="teller", amount_minor=100_000)
    entered = post_movement("transfer", payer, payee, "1500.00", actor=maker).journal
    hold = services.hold_place(
        account_id=payer.pk,
        amount=Money.parse("1.00", "USD"),
        reason="lien",
        expires_on=None,
        actor=maker,
        business_date=bank.business_date,
        now=timezone.now(),
    )
    return {
        "payer": payer.account_number,
        "payee": payee.account_number,
        "suspense": bank.office_account("suspense").account_number,
        "fee_income": bank.office_account("fee_income").account_number,
        "posted": posted.txn_id,
        "entered": entered.txn_id,
        "hold": str(hold.pk),
    }


@pytest.mark.parametrize(
    ("endpoint", "principal"), [c for c in CASES if c.values[1] in c.values[0].allowed]
)
def test_an_allowed_role_succeeds(bank, make_client, scenario, endpoint, principal):
    user = user_for(principal)
    seat(user, bank.branch)

    response = call(make_client(user), endpoint, scenario)

    assert response.status_code == endpoint.success, response.content
