"""Every CIF/accounts operation against every kind of caller.

Allowed roles get the operation's success status on real objects. Everyone else is turned
away before anything is looked up: anonymous callers with 401 ``auth.not_authenticated``, a
user without a bank role and a role not allowed with 403 ``auth.forbidden``; those requests
name objects that do not exist, so a permission hole would show as a 404 or a 2xx instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import Account, Customer
from tests.api.accounts_support import assert_problem, customer_payload
from tests.factories import BranchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

TELLER, SUPERVISOR, AUDITOR = "teller", "supervisor", "auditor"
ANONYMOUS, NO_ROLE = "anonymous", "no_role"
CALLERS = (TELLER, SUPERVISOR, AUDITOR, ANONYMOUS, NO_ROLE)
EVERYONE = (TELLER, SUPERVISOR, AUDITOR)
OPERATORS = (TELLER, SUPERVISOR)
SUPERVISORS = (SUPERVISOR,)

NO_CIF = "C999999999"
NO_ACCOUNT = "000199999990"


class World:
    """Objects an allowed caller acts on, built on demand (the full ``bank`` only for accounts)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def branch(self) -> Any:
        return BranchFactory(sol_code="0001", name="Head office")

    def customer(self) -> Customer:
        return CustomerFactory(home_branch=self.branch())

    def pending_customer(self) -> Customer:
        return CustomerFactory(
            home_branch=self.branch(),
            kyc_status=Customer.KycStatus.PENDING,
            kyc_verified_on=None,
        )

    def bank_customer(self) -> Customer:
        """A customer of the full test bank (its products are needed)."""
        return CustomerFactory(home_branch=self.request.getfixturevalue("bank").branch)

    def account(self) -> Account:
        return self.request.getfixturevalue("open_account")("SBA-USD")

    def frozen_account(self) -> Account:
        account = self.account()
        services.account_freeze(
            account_id=account.pk,
            freeze_type="total",
            reason="set up by test",
            actor=self.request.getfixturevalue("supervisor"),
            now=timezone.now(),
        )
        return account


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    allowed: tuple[str, ...]
    success: int
    # (world or None) -> (path, body); None means "denied: do not build objects".
    request: Callable[[World | None], tuple[str, dict[str, Any] | None]]


def _ready(world: World | None) -> str:
    """Build the calendar (for the business date) when the request will be served."""
    if world:
        world.branch()
    return ""


def _sol(world: World | None) -> str:
    return world.branch().sol_code if world else "0001"


def _cif(world: World | None, make: str = "customer") -> str:
    return getattr(world, make)().cif_id if world else NO_CIF


def _number(world: World | None, make: str = "account") -> str:
    return getattr(world, make)().account_number if world else NO_ACCOUNT


OPERATIONS = [
    Operation(
        "customer create",
        "post",
        OPERATORS,
        201,
        lambda w: ("/api/v1/customers", customer_payload(home_branch=_sol(w))),
    ),
    Operation("customer list", "get", EVERYONE, 200, lambda w: ("/api/v1/customers", None)),
    Operation(
        "customer get", "get", EVERYONE, 200, lambda w: (f"/api/v1/customers/{_cif(w)}", None)
    ),
    Operation(
        "customer update",
        "patch",
        OPERATORS,
        200,
        lambda w: (f"/api/v1/customers/{_cif(w)}", {"segment": "premium"}),
    ),
    Operation(
        "customer kyc",
        "post",
        SUPERVISORS,
        200,
        lambda w: (
            f"/api/v1/customers/{_cif(w, 'pending_customer')}/kyc",
            {"status": "verified", "reason": "documents seen"},
        ),
    ),
    Operation("branch list", "get", EVERYONE, 200, lambda w: ("/api/v1/branches", None)),
    Operation(
        "product list", "get", EVERYONE, 200, lambda w: (f"/api/v1/products{_ready(w)}", None)
    ),
    Operation(
        "account open",
        "post",
        OPERATORS,
        201,
        lambda w: (
            "/api/v1/accounts",
            {"customer": _cif(w, "bank_customer"), "product": "SBA-USD", "branch": "0001"},
        ),
    ),
    Operation("account list", "get", EVERYONE, 200, lambda w: ("/api/v1/accounts", None)),
    Operation(
        "account get",
        "get",
        EVERYONE,
        200,
        lambda w: (f"/api/v1/accounts/{_number(w)}", None),
    ),
    Operation(
        "account freeze",
        "post",
        SUPERVISORS,
        200,
        lambda w: (
            f"/api/v1/accounts/{_number(w)}/freeze",
            {"freeze_type": "debit", "reason": "court order"},
        ),
    ),
    Operation(
        "account unfreeze",
        "post",
        SUPERVISORS,
        200,
        lambda w: (
            f"/api/v1/accounts/{_number(w, 'frozen_account')}/unfreeze",
            {"reason": "order lifted"},
        ),
    ),
    Operation(
        "account close",
        "post",
        OPERATORS,
        200,
        lambda w: (f"/api/v1/accounts/{_number(w)}/close", {"reason": "customer request"}),
    ),
]


@pytest.fixture
def caller(request, make_client):
    """A client authenticated as the role named by the test's ``role`` parameter."""

    def _client(role: str):
        if role == ANONYMOUS:
            return make_client(None)
        if role == NO_ROLE:
            return make_client(UserFactory(username="no-role"))
        return make_client(
            request.getfixturevalue(
                {TELLER: "teller", SUPERVISOR: "supervisor", AUDITOR: "auditor"}[role]
            )
        )

    return _client


@pytest.mark.parametrize("role", CALLERS)
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_each_caller_gets_what_its_role_allows(request, caller, operation, role):
    client = caller(role)
    allowed = role in operation.allowed
    world = World(request) if allowed else None
    path, body = operation.request(world)
    customers, accounts = Customer.history.count(), Account.history.count()

    response = getattr(client, operation.method)(path, body, format="json" if body else None)

    if allowed:
        assert response.status_code == operation.success, response.content
        assert response["Content-Type"] == "application/json"
    else:
        if role == ANONYMOUS:
            assert_problem(response, 401, "auth.not_authenticated")
            assert response["WWW-Authenticate"] == "Token"
        else:
            assert_problem(response, 403, "auth.forbidden")
        assert (Customer.history.count(), Account.history.count()) == (customers, accounts)


def test_the_matrix_covers_every_route_of_the_accounts_app():
    from accounts import urls

    documented = {(op.method.upper(), _route_of(op)) for op in OPERATIONS}
    routed = set()
    for pattern in urls.urlpatterns:
        view = pattern.callback.cls
        methods = getattr(view, "operations", None) or {
            m.upper(): None for m in ("get", "post", "patch", "put", "delete") if hasattr(view, m)
        }
        for method in methods:
            if method != "HEAD":
                routed.add((method, str(pattern.pattern)))
    assert routed == documented


def _route_of(operation: Operation) -> str:
    path, _ = operation.request(None)
    route = path.removeprefix("/api/v1/")
    return route.replace(NO_CIF, "<str:cif_id>").replace(NO_ACCOUNT, "<str:account_number>")


def test_every_operation_documents_its_auth_problems_in_the_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    for operation in OPERATIONS:
        path = "/api/v1/" + _route_of(operation).replace("<str:", "{").replace(">", "}")
        responses = schema["paths"][path][operation.method]["responses"]
        assert str(operation.success) in responses, operation.name
        for status in ("401", "403"):
            assert "application/problem+json" in responses[status]["content"], operation.name
