"""Holds (liens) on customer accounts: place, list, release."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from banksim.api.fields import IsoDateField
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import ALL_ROLES, OPERATORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from banksim.core.money import Money
from ledger import selectors, services
from ledger.api.common import (
    ACCOUNT_NUMBER,
    IDEMPOTENCY_KEY,
    EmptyInputSerializer,
    MoneyInputSerializer,
    http_response,
    idempotency_claim,
    reason_field,
    rendered,
)
from ledger.idempotency import idempotent_execute
from ledger.models import Hold

TAG = ["ledger: holds"]
HOLD_ID = OpenApiParameter("hold_id", int, OpenApiParameter.PATH)


class HoldOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account_number = serializers.CharField(source="account.account_number")
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    reason = serializers.CharField()
    status = serializers.CharField()
    placed_on = serializers.DateField()
    expires_on = serializers.DateField(allow_null=True)
    placed_at = serializers.DateTimeField()
    released_at = serializers.DateTimeField(allow_null=True)
    txn_id = serializers.CharField(
        source="journal.txn_id",
        allow_null=True,
        default=None,
        help_text="The transaction awaiting approval that this hold secures, if any.",
    )

    class Meta:
        ref_name = "Hold"

    def get_amount(self, hold: Hold) -> str:
        return Money.from_minor(hold.amount_minor, hold.currency).to_wire()


class HoldPlaceApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(MoneyInputSerializer):
        reason = reason_field()
        expires_on = IsoDateField(required=False, allow_null=True, default=None)

        class Meta:
            ref_name = "HoldPlaceInput"

    @extend_schema(
        tags=TAG,
        operation_id="hold_place",
        summary="Place a hold that reduces the available balance",
        parameters=[ACCOUNT_NUMBER, IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses={
            201: OpenApiResponse(HoldOutputSerializer, description="Placed."),
            **problems(400, 404, 409, 422),
        },
    )
    def post(self, request: Request, account_number: str) -> HttpResponse:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        claim = idempotency_claim(request)
        account = account_selectors.customer_account_get(account_number=account_number)
        now = clock.now()
        business_date = clock.business_date()

        stored = idempotent_execute(
            claim=claim,
            operation=lambda: services.hold_place_locked(
                account_id=account.pk,
                amount=data["money"],
                reason=data["reason"],
                expires_on=data["expires_on"],
                actor=request.user,
                business_date=business_date,
                now=now,
            ),
            render=lambda hold: rendered(201, HoldOutputSerializer(hold).data),
            now=now,
        )

        return http_response(stored)


class HoldListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        status = serializers.ChoiceField(choices=Hold.Status.choices, required=False)

        class Meta:
            ref_name = "HoldFilter"

    OutputSerializer = page_serializer(HoldOutputSerializer, "HoldPageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="hold_list",
        summary="List an account's holds, newest first",
        parameters=[ACCOUNT_NUMBER, FilterSerializer],
        responses={200: OutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request, account_number: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        account = account_selectors.customer_account_get(account_number=account_number)

        count, holds = page_of(
            selectors.hold_list(account=account, status=params.get("status", "")),
            limit=params["limit"],
            offset=params["offset"],
        )

        return Response(
            self.OutputSerializer(
                {
                    "count": count,
                    "limit": params["limit"],
                    "offset": params["offset"],
                    "results": holds,
                }
            ).data
        )


class HoldReleaseApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    InputSerializer = EmptyInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="hold_release",
        summary="Release an active hold",
        parameters=[HOLD_ID],
        request=InputSerializer,
        responses={200: HoldOutputSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request, hold_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        hold = services.hold_release(hold_id=hold_id, actor=request.user, now=clock.now())

        return Response(HoldOutputSerializer(hold).data)
