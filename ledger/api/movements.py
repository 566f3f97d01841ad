"""Money movements from the teller screen: transfers, cash deposits and withdrawals, and GL
adjustments. Each answers 201 with the posted journal, or 202 when the amount is above the
maker-checker threshold and the movement waits for a supervisor."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from banksim.api.permissions import OPERATORS, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from ledger import selectors, services
from ledger.api.common import (
    IDEMPOTENCY_KEY,
    MoneyInputSerializer,
    StoredResponse,
    TransactionOutputSerializer,
    account_number_field,
    http_response,
    idempotency_claim,
    narration_field,
    transaction_rendered,
)
from ledger.idempotency import IdempotencyClaim, idempotent_execute
from ledger.models import Journal
from ledger.services import Movement, MovementResult

TAG = ["ledger: movements"]
CHANNEL = Journal.Channel.TELLER
RESPONSES = {
    201: OpenApiResponse(TransactionOutputSerializer, description="Posted."),
    202: OpenApiResponse(
        TransactionOutputSerializer,
        description="Above the maker-checker threshold: entered for a supervisor's approval; "
        "the amount is held on the debit account.",
    ),
    **problems(400, 404, 409, 422),
}


def _render(result: MovementResult) -> StoredResponse:
    return transaction_rendered(
        201 if result.posted else 202, selectors.journal_detail(journal_id=result.journal.pk)
    )


def _post_once(request: Request, claim: IdempotencyClaim, movement: Movement) -> HttpResponse:
    now = clock.now()
    business_date = clock.business_date()
    return http_response(
        idempotent_execute(
            claim=claim,
            operation=lambda: services.movement_post(
                movement=movement, actor=request.user, business_date=business_date, now=now
            ),
            render=_render,
            now=now,
        )
    )


class TransferCreateApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(MoneyInputSerializer):
        debit_account = account_number_field()
        credit_account = account_number_field()
        narration = narration_field()

        class Meta:
            ref_name = "TransferInput"

    @extend_schema(
        tags=TAG,
        operation_id="transfer_create",
        summary="Transfer between two customer accounts",
        parameters=[IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses=RESPONSES,
    )
    def post(self, request: Request) -> HttpResponse:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        claim = idempotency_claim(request)
        payer = account_selectors.customer_account_get(account_number=data["debit_account"])
        payee = account_selectors.customer_account_get(account_number=data["credit_account"])

        movement = Movement(
            txn_type=Journal.TxnType.TRANSFER,
            debit_account_id=payer.pk,
            credit_account_id=payee.pk,
            amount=data["money"],
            channel=CHANNEL,
            narration=data["narration"],
        )
        return _post_once(request, claim, movement)


class CashInputSerializer(MoneyInputSerializer):
    account = account_number_field(help_text="The customer account.")
    narration = narration_field()

    class Meta:
        ref_name = "CashMovementInput"


def _post_cash(
    request: Request, serializer_class: type[CashInputSerializer], txn_type: str
) -> HttpResponse:
    """Cash against the teller's till: a deposit debits the till, a withdrawal credits it."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    claim = idempotency_claim(request)
    customer = account_selectors.customer_account_get(account_number=data["account"])
    till = account_selectors.teller_cash_account(user=request.user, currency=data["currency"])
    debit, credit = (
        (till, customer)
        if txn_type == Journal.TxnType.CASH_DEPOSIT
        else (
            customer,
            till,
        )
    )

    movement = Movement(
        txn_type=txn_type,
        debit_account_id=debit.pk,
        credit_account_id=credit.pk,
        amount=data["money"],
        channel=CHANNEL,
        narration=data["narration"],
    )
    return _post_once(request, claim, movement)


class DepositCreateApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    InputSerializer = CashInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="deposit_create",
        summary="Cash deposit: debit the teller's cash, credit the customer",
        parameters=[IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses=RESPONSES,
    )
    def post(self, request: Request) -> HttpResponse:
        return _post_cash(request, self.InputSerializer, Journal.TxnType.CASH_DEPOSIT)


class WithdrawalCreateApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    InputSerializer = CashInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="withdrawal_create",
        summary="Cash withdrawal: debit the customer, credit the teller's cash",
        parameters=[IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses=RESPONSES,
    )
    def post(self, request: Request) -> HttpResponse:
        return _post_cash(request, self.InputSerializer, Journal.TxnType.CASH_WITHDRAWAL)


class AdjustmentCreateApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(MoneyInputSerializer):
        debit_account = account_number_field(help_text="An office (GL) account.")
        credit_account = account_number_field(help_text="An office (GL) account.")
        narration = narration_field()

        class Meta:
            ref_name = "AdjustmentInput"

    @extend_schema(
        tags=TAG,
        operation_id="adjustment_create",
        summary="GL to GL adjustment (supervisor)",
        parameters=[IDEMPOTENCY_KEY],
        request=InputSerializer,
        responses=RESPONSES,
    )
    def post(self, request: Request) -> HttpResponse:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        claim = idempotency_claim(request)
        debit = account_selectors.account_get(account_number=data["debit_account"])
        credit = account_selectors.account_get(account_number=data["credit_account"])

        movement = Movement(
            txn_type=Journal.TxnType.ADJUSTMENT,
            debit_account_id=debit.pk,
            credit_account_id=credit.pk,
            amount=data["money"],
            channel=CHANNEL,
            narration=data["narration"],
        )
        return _post_once(request, claim, movement)
