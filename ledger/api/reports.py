"""Reads for tellers and auditors: an account's balance (now or as of a date), its statement,
and the bank's trial balance."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from banksim.api.fields import (
    CurrencyField,
    IsoDateField,
    MoneyOutField,
    QueryIntField,
    StrictInputSerializer,
)
from banksim.api.permissions import ALL_ROLES, roles
from banksim.api.schema import problems
from ledger import selectors
from ledger.api.common import ACCOUNT_NUMBER

TAG = ["ledger: reports"]
STATEMENT_MAX_LIMIT = 200
STATEMENT_DEFAULT_LIMIT = 50

_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def cursor_encode(key: tuple[date, int]) -> str:
    """The opaque page cursor: the (business_date, entry id) of the last line shown."""
    raw = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class CursorField(serializers.CharField):
    default_error_messages = {"invalid": "not a cursor returned by this endpoint"}

    def to_internal_value(self, data: Any) -> tuple[date, int]:
        if not isinstance(data, str) or not _CURSOR.fullmatch(data):
            self.fail("invalid")
        try:
            decoded = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            day, entry_id = decoded
            if not (isinstance(day, str) and _ISO_DATE.fullmatch(day)):
                raise ValueError(day)
            if not isinstance(entry_id, int) or isinstance(entry_id, bool) or entry_id < 0:
                raise ValueError(entry_id)
            return date.fromisoformat(day), entry_id
        except (binascii.Error, ValueError, TypeError):
            self.fail("invalid")
        raise AssertionError("unreachable")  # pragma: no cover - fail() always raises


# --- balance -----------------------------------------------------------------------------------


class BalanceApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(StrictInputSerializer):
        as_of = IsoDateField(
            required=False,
            help_text="A business date: the ledger balance at its end. Omit for now.",
        )

        class Meta:
            ref_name = "BalanceFilter"

    class OutputSerializer(serializers.Serializer):
        account_number = serializers.CharField()
        currency = serializers.CharField()
        as_of = serializers.DateField(allow_null=True)
        ledger_balance = MoneyOutField()
        available_balance = MoneyOutField(
            allow_null=True, help_text="Only for the current balance (no as_of)."
        )
        held_balance = MoneyOutField(allow_null=True, help_text="Only for the current balance.")

        class Meta:
            ref_name = "Balance"

    @extend_schema(
        tags=TAG,
        operation_id="account_balance",
        summary="An account's balances now, or its ledger balance at the end of a business date",
        parameters=[ACCOUNT_NUMBER, FilterSerializer],
        responses={200: OutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request, account_number: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        as_of = filters.validated_data.get("as_of")
        account = account_selectors.account_get(account_number=account_number)

        if as_of is None:
            now = selectors.balance_snapshot(account_id=account.pk)
            ledger, available, held = now.ledger, now.available, now.held
        else:
            ledger = selectors.balance_as_of(account=account, on=as_of)
            available = held = None

        return Response(
            self.OutputSerializer(
                {
                    "account_number": account.account_number,
                    "currency": account.currency,
                    "as_of": as_of,
                    "ledger_balance": ledger,
                    "available_balance": available,
                    "held_balance": held,
                }
            ).data
        )


# --- statement ---------------------------------------------------------------------------------


class StatementLineOutputSerializer(serializers.Serializer):
    txn_id = serializers.CharField()
    business_date = serializers.DateField()
    posted_at = serializers.DateTimeField(allow_null=True)
    narration = serializers.CharField()
    side = serializers.CharField(help_text="D (debit) or C (credit).")
    amount = MoneyOutField()
    balance = MoneyOutField(help_text="Running ledger balance after this line.")
    purpose = serializers.CharField()

    class Meta:
        ref_name = "StatementLine"


class StatementApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(StrictInputSerializer):
        limit = QueryIntField(
            required=False,
            default=STATEMENT_DEFAULT_LIMIT,
            min_value=1,
            max_value=STATEMENT_MAX_LIMIT,
        )
        cursor = CursorField(
            required=False, help_text="`next_cursor` of the previous page; omit for the first."
        )

        class Meta:
            ref_name = "StatementFilter"

        def get_fields(self) -> dict[str, serializers.Field]:
            # ``from`` is a Python keyword, so the range fields are added by name here.
            fields = super().get_fields()
            fields["from"] = IsoDateField(required=False, help_text="First business date.")
            fields["to"] = IsoDateField(required=False, help_text="Last business date.")
            return fields

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            start, end = attrs.get("from"), attrs.get("to")
            if start is not None and end is not None and end < start:
                raise serializers.ValidationError(
                    {"to": [serializers.ErrorDetail("must not be before from", code="invalid")]}
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        account_number = serializers.CharField()
        currency = serializers.CharField()
        date_from = serializers.DateField(allow_null=True)
        date_to = serializers.DateField(allow_null=True)
        opening_balance = MoneyOutField(help_text="Ledger balance before the range's first line.")
        closing_balance = MoneyOutField(help_text="Ledger balance after the range's last line.")
        lines = StatementLineOutputSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

        class Meta:
            ref_name = "Statement"

    @extend_schema(
        tags=TAG,
        operation_id="account_statement",
        summary="An account's statement over business dates, with running balances",
        parameters=[ACCOUNT_NUMBER, FilterSerializer],
        responses={200: OutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request, account_number: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        account = account_selectors.account_get(account_number=account_number)

        page = selectors.statement(
            account=account,
            date_from=params.get("from"),
            date_to=params.get("to"),
            after=params.get("cursor"),
            limit=params["limit"],
        )

        return Response(
            self.OutputSerializer(
                {
                    "account_number": account.account_number,
                    "currency": account.currency,
                    "date_from": params.get("from"),
                    "date_to": params.get("to"),
                    "opening_balance": page.opening,
                    "closing_balance": page.closing,
                    "lines": page.lines,
                    "next_cursor": cursor_encode(page.next_after) if page.next_after else None,
                }
            ).data
        )


# --- trial balance -----------------------------------------------------------------------------


class TrialBalanceLineOutputSerializer(serializers.Serializer):
    gl_subhead = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    debit = MoneyOutField(help_text="Sum of the debit balances under this sub-head.")
    credit = MoneyOutField(help_text="Sum of the credit balances under this sub-head.")
    net = MoneyOutField(help_text="credit - debit")

    class Meta:
        ref_name = "TrialBalanceLine"


class TrialBalanceCurrencyOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    debit = MoneyOutField()
    credit = MoneyOutField()
    net = MoneyOutField(help_text='Always "0" in a sound ledger.')
    lines = TrialBalanceLineOutputSerializer(many=True)

    class Meta:
        ref_name = "TrialBalanceCurrency"


class TrialBalanceApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(StrictInputSerializer):
        currency = CurrencyField(required=False)

        class Meta:
            ref_name = "TrialBalanceFilter"

    class OutputSerializer(serializers.Serializer):
        currencies = TrialBalanceCurrencyOutputSerializer(many=True)

        class Meta:
            ref_name = "TrialBalance"

    @extend_schema(
        tags=TAG,
        operation_id="trial_balance",
        summary="Trial balance per currency and GL sub-head",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)

        report = selectors.trial_balance(currency=filters.validated_data.get("currency", ""))

        return Response(self.OutputSerializer({"currencies": report}).data)
