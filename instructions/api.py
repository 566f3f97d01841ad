"""Standing-instruction endpoints: create, list, read, cancel.

Creating an instruction moves no money (the EOD batch posts each occurrence), so unlike the
movement endpoints these POSTs take no ``Idempotency-Key``: a retried create makes a second
instruction, which the teller sees in the list and cancels. See docs/simulator.md.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from banksim.api.fields import IsoDateField, StrictInputSerializer
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import ALL_ROLES, OPERATORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from banksim.core.money import Money
from instructions import selectors, services
from instructions.models import StandingInstruction
from ledger.api.common import (
    MoneyInputSerializer,
    account_number_field,
    narration_field,
    reason_field,
)

TAG = ["standing instructions"]
INSTRUCTION_ID = OpenApiParameter(
    "instruction_id", int, OpenApiParameter.PATH, description="Standing instruction id"
)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: no strings, no booleans."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true``/``false`` only: not ``"yes"``, ``1`` or ``"true"``."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=str(data)[:10])
        return data


class RunOutputSerializer(serializers.Serializer):
    due_date = serializers.DateField()
    attempt = serializers.IntegerField()
    run_on = serializers.DateField()
    outcome = serializers.CharField()
    txn_id = serializers.CharField()
    error_code = serializers.CharField()

    class Meta:
        ref_name = "StandingInstructionRun"


class InstructionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    debit_account = serializers.CharField(source="debit_account.account_number")
    credit_account = serializers.CharField(source="credit_account.account_number")
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    frequency = serializers.CharField()
    next_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    status = serializers.CharField()
    max_retries = serializers.IntegerField()
    carry_forward = serializers.BooleanField()
    failures = serializers.IntegerField()
    last_error = serializers.CharField()
    narration = serializers.CharField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "StandingInstruction"

    def get_amount(self, instruction: StandingInstruction) -> str:
        return Money.from_minor(instruction.amount_minor, instruction.currency).to_wire()


class InstructionDetailOutputSerializer(InstructionOutputSerializer):
    runs = serializers.SerializerMethodField()

    class Meta:
        ref_name = "StandingInstructionDetail"

    @extend_schema(responses=RunOutputSerializer(many=True))  # type: ignore[misc]
    def get_runs(self, instruction: StandingInstruction) -> list[dict[str, Any]]:
        return RunOutputSerializer(selectors.si_runs(instruction_id=instruction.pk), many=True).data  # type: ignore[return-value]


def _detail(instruction_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    instruction = selectors.si_get(instruction_id=instruction_id)
    return Response(InstructionDetailOutputSerializer(instruction).data, status=status_code)


class InstructionCreateApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(MoneyInputSerializer):
        debit_account = account_number_field()
        credit_account = account_number_field()
        frequency = serializers.ChoiceField(choices=StandingInstruction.Frequency.choices)
        next_date = IsoDateField()
        end_date = IsoDateField(required=False, allow_null=True, default=None)
        max_retries = StrictIntegerField(required=False, default=0, min_value=0, max_value=10)
        carry_forward = StrictBooleanField(required=False, default=False)
        narration = narration_field()

        class Meta:
            ref_name = "StandingInstructionInput"

    @extend_schema(
        tags=TAG,
        operation_id="standing_instruction_create",
        summary="Create a standing instruction (no Idempotency-Key: it moves no money now)",
        request=InputSerializer,
        responses={201: InstructionDetailOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payer = account_selectors.account_get(account_number=data["debit_account"])
        payee = account_selectors.account_get(account_number=data["credit_account"])

        instruction = services.si_create(
            debit_account_id=payer.pk,
            credit_account_id=payee.pk,
            amount=data["money"],
            frequency=data["frequency"],
            next_date=data["next_date"],
            end_date=data["end_date"],
            max_retries=data["max_retries"],
            carry_forward=data["carry_forward"],
            narration=data["narration"],
            actor=request.user,
            business_date=clock.business_date(),
            now=clock.now(),
        )

        return _detail(instruction.pk, status_code=status.HTTP_201_CREATED)


class InstructionListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        account = account_number_field(required=False)
        status = serializers.ChoiceField(choices=StandingInstruction.Status.choices, required=False)

        class Meta:
            ref_name = "StandingInstructionFilter"

    OutputSerializer = page_serializer(InstructionOutputSerializer, "StandingInstructionPage")

    @extend_schema(
        tags=TAG,
        operation_id="standing_instruction_list",
        summary="List standing instructions, optionally of one account (payer or payee)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data

        count, rows = page_of(
            selectors.si_list(
                account_number=params.get("account", ""), status=params.get("status", "")
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
                    "results": rows,
                }
            ).data
        )


class InstructionDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="standing_instruction_get",
        summary="Read a standing instruction with its runs",
        parameters=[INSTRUCTION_ID],
        responses={200: InstructionDetailOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, instruction_id: int) -> Response:
        return _detail(instruction_id)


class InstructionCancelApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(StrictInputSerializer):
        reason = reason_field()

        class Meta:
            ref_name = "StandingInstructionCancelInput"

    @extend_schema(
        tags=TAG,
        operation_id="standing_instruction_cancel",
        summary="Cancel a standing instruction",
        parameters=[INSTRUCTION_ID],
        request=InputSerializer,
        responses={200: InstructionDetailOutputSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request, instruction_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        services.si_cancel(
            instruction_id=instruction_id,
            reason=serializer.validated_data["reason"],
            actor=request.user,
            now=clock.now(),
        )

        return _detail(instruction_id)
