"""Account endpoints: open, list, read with balances, freeze, unfreeze, close.

Status changes are served for customer accounts only; office (GL) accounts can be read here
but are run by operations, not from a teller screen.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.common import cif_id_field, product_code_field, sol_code_field
from accounts.models import Account
from banksim.api.fields import StrictInputSerializer, TextField
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import ALL_ROLES, OPERATORS, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from ledger.selectors import BalanceSnapshot, balance_snapshot

TAG = ["accounts"]
ACCOUNT_NUMBER = OpenApiParameter(
    "account_number", str, OpenApiParameter.PATH, description="12 digits, e.g. 000100000181"
)


class AccountOutputSerializer(serializers.Serializer):
    account_number = serializers.CharField()
    kind = serializers.CharField()
    office_role = serializers.CharField()
    title = serializers.CharField()
    customer = serializers.CharField(source="customer.cif_id", allow_null=True, default=None)
    branch = serializers.CharField(source="branch.sol_code")
    product = serializers.CharField(source="product.code")
    currency = serializers.CharField()
    status = serializers.CharField()
    freeze_type = serializers.CharField()
    status_reason = serializers.CharField()
    status_changed_at = serializers.DateTimeField()
    opened_on = serializers.DateField()
    closed_on = serializers.DateField(allow_null=True)

    class Meta:
        ref_name = "Account"


class AccountDetailOutputSerializer(AccountOutputSerializer):
    """The account with its balances as of the last committed posting (strings, ``currency``)."""

    ledger_balance = serializers.SerializerMethodField()
    available_balance = serializers.SerializerMethodField()
    held_balance = serializers.SerializerMethodField()

    class Meta:
        ref_name = "AccountDetail"

    def _balances(self) -> BalanceSnapshot:
        return self.context["balances"]

    def get_ledger_balance(self, account: Account) -> str:
        return self._balances().ledger.to_wire()

    def get_available_balance(self, account: Account) -> str:
        return self._balances().available.to_wire()

    def get_held_balance(self, account: Account) -> str:
        return self._balances().held.to_wire()


def _detail(account_number: str, *, status_code: int = status.HTTP_200_OK) -> Response:
    account = selectors.account_get(account_number=account_number)
    balances = balance_snapshot(account_id=account.pk)
    return Response(
        AccountDetailOutputSerializer(account, context={"balances": balances}).data,
        status=status_code,
    )


class ReasonInputSerializer(StrictInputSerializer):
    """Why the status changes; kept on the account and in its history."""

    reason = TextField(max_length=200)

    class Meta:
        ref_name = "AccountReasonInput"


class AccountOpenApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(StrictInputSerializer):
        customer = cif_id_field()
        product = product_code_field()
        branch = sol_code_field()
        title = TextField(max_length=200, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "AccountOpenInput"

    @extend_schema(
        tags=TAG,
        operation_id="account_open",
        summary="Open a customer account (zero balance)",
        request=InputSerializer,
        responses={201: AccountDetailOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = selectors.customer_get(cif_id=data["customer"])
        branch = selectors.branch_get(sol_code=data["branch"])

        account = services.account_open(
            customer_id=customer.pk,
            product_code=data["product"],
            branch_id=branch.pk,
            title=data["title"],
            actor=request.user,
            business_date=clock.business_date(calendar_code=branch.calendar.code),
            now=clock.now(),
        )

        return _detail(account.account_number, status_code=status.HTTP_201_CREATED)


class AccountListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        customer = cif_id_field(required=False)
        status = serializers.ChoiceField(choices=Account.Status.choices, required=False)
        product = product_code_field(required=False)

        class Meta:
            ref_name = "AccountFilter"

    OutputSerializer = page_serializer(AccountOutputSerializer, "AccountPageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="account_list",
        summary="List accounts",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data

        count, accounts = page_of(
            selectors.account_list(
                cif_id=params.get("customer", ""),
                status=params.get("status", ""),
                product_code=params.get("product", ""),
            ),
            limit=params["limit"],
            offset=params["offset"],
        )

        return Response(
            self.OutputSerializer(
                {
                    "count": count,
                    "limit": params["limit"],
                    "offset": params["offset"],
                    "results": accounts,
                }
            ).data
        )


class AccountDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="account_get",
        summary="Read an account with its balances",
        parameters=[ACCOUNT_NUMBER],
        responses={200: AccountDetailOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, account_number: str) -> Response:
        return _detail(account_number)


class AccountFreezeApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(StrictInputSerializer):
        freeze_type = serializers.ChoiceField(choices=Account.FreezeType.choices)
        reason = TextField(max_length=200)

        class Meta:
            ref_name = "AccountFreezeInput"

    @extend_schema(
        tags=TAG,
        operation_id="account_freeze",
        summary="Freeze an account for debits, credits or both (supervisor)",
        parameters=[ACCOUNT_NUMBER],
        request=InputSerializer,
        responses={200: AccountDetailOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request, account_number: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = selectors.customer_account_get(account_number=account_number)

        services.account_freeze(
            account_id=account.pk,
            freeze_type=serializer.validated_data["freeze_type"],
            reason=serializer.validated_data["reason"],
            actor=request.user,
            now=clock.now(),
        )

        return _detail(account_number)


class AccountUnfreezeApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    InputSerializer = ReasonInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="account_unfreeze",
        summary="Lift a freeze (supervisor)",
        parameters=[ACCOUNT_NUMBER],
        request=InputSerializer,
        responses={200: AccountDetailOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request, account_number: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = selectors.customer_account_get(account_number=account_number)

        services.account_unfreeze(
            account_id=account.pk,
            reason=serializer.validated_data["reason"],
            actor=request.user,
            now=clock.now(),
        )

        return _detail(account_number)


class AccountCloseApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    InputSerializer = ReasonInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="account_close",
        summary="Close an account whose balance is zero and which has no hold",
        parameters=[ACCOUNT_NUMBER],
        request=InputSerializer,
        responses={200: AccountDetailOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request, account_number: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = selectors.customer_account_get(account_number=account_number)

        services.account_close(
            account_id=account.pk,
            reason=serializer.validated_data["reason"],
            actor=request.user,
            business_date=clock.business_date(calendar_code=account.branch.calendar.code),
            now=clock.now(),
        )

        return _detail(account_number)
