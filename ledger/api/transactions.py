"""Transactions (journals): read one, list the approval queue, reverse, approve, reject."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from banksim.api.fields import StrictInputSerializer
from banksim.api.pagination import PageInputSerializer, page_serializer
from banksim.api.permissions import ALL_ROLES, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from ledger import selectors, services
from ledger.api.common import (
    IDEMPOTENCY_KEY,
    TXN_ID,
    EmptyInputSerializer,
    TransactionOutputSerializer,
    http_response,
    idempotency_claim,
    reason_field,
    transaction_rendered,
)
from ledger.idempotency import idempotent_execute
from ledger.models import Journal

TAG = ["ledger: transactions"]


class TransactionDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="transaction_get",
        summary="Read a transaction with its entries",
        parameters=[TXN_ID],
        responses={200: TransactionOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, txn_id: str) -> Response:
        journal = selectors.journal_get(txn_id=txn_id)
        return Response(
            TransactionOutputSerializer(selectors.journal_detail(journal_id=journal.pk)).data
        )


class TransactionListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        status = serializers.ChoiceField(
            choices=Journal.Status.choices,
            required=False,
            help_text="`entered` is the approval queue.",
        )

        class Meta:
            ref_name = "TransactionFilter"

    OutputSerializer = page_serializer(TransactionOutputSerializer, "TransactionPageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="transaction_list",
        summary="List transactions, oldest first (e.g. the approval queue)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data

        count, journals = selectors.journal_page(
            status=params.get("status", ""), limit=params["limit"], offset=params["offset"]
        )

        return Response(
            self.OutputSerializer(
                {
                    "count": count,
                    "limit": params["limit"],
                    "offset": params["offset"],
                    "results": journals,
                }
            ).data
        )


class ReasonInputSerializer(StrictInputSerializer):
    reason = reason_field()

    class Meta:
        ref_name = "TransactionReasonInput"


class TransactionReverseApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    InputSerializer = ReasonInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="transaction_reverse",
        summary="Reverse a posted transaction, all its legs (supervisor)",
        parameters=[TXN_ID, IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses={
            201: OpenApiResponse(TransactionOutputSerializer, description="The reversal."),
            **problems(400, 404, 409, 422),
        },
    )
    def post(self, request: Request, txn_id: str) -> HttpResponse:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claim = idempotency_claim(request)
        original = selectors.journal_get(txn_id=txn_id)
        now = clock.now()
        business_date = clock.business_date()

        stored = idempotent_execute(
            claim=claim,
            operation=lambda: services.journal_reverse_post(
                journal_id=original.pk,
                reason=serializer.validated_data["reason"],
                actor=request.user,
                channel=Journal.Channel.TELLER,
                business_date=business_date,
                now=now,
            ),
            render=lambda reversal: transaction_rendered(
                201, selectors.journal_detail(journal_id=reversal.pk)
            ),
            now=now,
        )

        return http_response(stored)


class TransactionApproveApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    InputSerializer = EmptyInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="transaction_approve",
        summary="Approve and post an entered transaction (supervisor, not its maker)",
        parameters=[TXN_ID, IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses={
            200: OpenApiResponse(TransactionOutputSerializer, description="Posted."),
            **problems(400, 404, 409, 422),
        },
    )
    def post(self, request: Request, txn_id: str) -> HttpResponse:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claim = idempotency_claim(request)
        entered = selectors.journal_get(txn_id=txn_id)
        now = clock.now()
        business_date = clock.business_date()

        stored = idempotent_execute(
            claim=claim,
            operation=lambda: services.journal_approve_post(
                journal_id=entered.pk, actor=request.user, business_date=business_date, now=now
            ),
            render=lambda posted: transaction_rendered(
                200, selectors.journal_detail(journal_id=posted.pk)
            ),
            now=now,
        )

        return http_response(stored)


class TransactionRejectApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    InputSerializer = ReasonInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="transaction_reject",
        summary="Reject an entered transaction and release its hold (supervisor, not its maker)",
        parameters=[TXN_ID],
        request=InputSerializer,
        responses={200: TransactionOutputSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request, txn_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entered = selectors.journal_get(txn_id=txn_id)

        rejected = services.journal_reject(
            journal_id=entered.pk,
            reason=serializer.validated_data["reason"],
            actor=request.user,
            now=clock.now(),
        )

        return Response(
            TransactionOutputSerializer(selectors.journal_detail(journal_id=rejected.pk)).data
        )
