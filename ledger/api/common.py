"""Input fields, money input, journal output and the idempotent-response plumbing of the ledger
views."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from banksim.api.fields import (
    AmountField,
    CodeField,
    CurrencyField,
    MoneyOutField,
    StrictInputSerializer,
    TextField,
)
from banksim.core.money import InvalidAmount, Money
from ledger.idempotency import HEADER, REPLAYED_HEADER, IdempotencyClaim, StoredResponse
from ledger.selectors import JournalDetail

# A ceiling far above any real movement that keeps every amount, and any sum of a few thousand
# of them, inside the ledger's 64-bit minor-unit columns (an overflow would be a 500).
MAX_AMOUNT_MINOR = 10**15 - 1

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "Client-chosen key, 1-255 printable ASCII characters (a UUID is ideal), scoped to the "
        "authenticated user. A retry with the same key and body replays the first answer byte "
        "for byte with `Idempotent-Replayed: true`. See docs/idempotency.md."
    ),
)
TXN_ID = OpenApiParameter(
    "txn_id", str, OpenApiParameter.PATH, description="Transaction id, e.g. T000100000001"
)
ACCOUNT_NUMBER = OpenApiParameter(
    "account_number", str, OpenApiParameter.PATH, description="12 digits, e.g. 000100000181"
)


def account_number_field(**kwargs: Any) -> CodeField:
    return CodeField(
        pattern=r"[0-9]{12}", name="account number (12 digits)", max_length=12, **kwargs
    )


def narration_field() -> TextField:
    return TextField(max_length=200, required=False, allow_blank=True, default="")


def reason_field() -> TextField:
    return TextField(max_length=200)


class MoneyInputSerializer(StrictInputSerializer):
    """``amount`` (a decimal string) and ``currency``; ``validate`` pairs them into ``money``."""

    amount = AmountField(help_text='A decimal string in the currency\'s units, e.g. "100.50".')
    currency = CurrencyField(help_text="ISO 4217, upper case; must be the account's currency.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        try:
            money = Money.parse(attrs["amount"], attrs["currency"])
        except InvalidAmount as exc:
            # The amount is well-formed but not on the currency's grid ("1.001" USD, "1.5"
            # JPY): that is a fault of the amount field, reported as such.
            raise serializers.ValidationError(
                {"amount": [serializers.ErrorDetail(exc.detail, code="max_decimal_places")]}
            ) from exc
        if money.minor > MAX_AMOUNT_MINOR:
            raise serializers.ValidationError(
                {"amount": [serializers.ErrorDetail("amount is too large", code="max_value")]}
            )
        attrs["money"] = money
        return attrs


class EmptyInputSerializer(StrictInputSerializer):
    """An operation that takes no body: anything sent is an unknown field."""

    class Meta:
        ref_name = "EmptyInput"


# --- output ------------------------------------------------------------------------------------


class EntryOutputSerializer(serializers.Serializer):
    account_number = serializers.CharField()
    side = serializers.CharField(help_text="D (debit) or C (credit).")
    amount = MoneyOutField()
    balance_after = MoneyOutField(
        allow_null=True,
        help_text="The account's ledger balance after this entry; null on office (GL) "
        "accounts, whose balance is not kept per entry.",
    )
    purpose = serializers.CharField(help_text="principal, fee, tax, interest...")

    class Meta:
        ref_name = "Entry"


class TransactionOutputSerializer(serializers.Serializer):
    """A journal: entered (awaiting approval), posted (with entries) or rejected."""

    txn_id = serializers.CharField(source="journal.txn_id")
    status = serializers.CharField(source="journal.status")
    type = serializers.CharField(source="journal.txn_type")
    channel = serializers.CharField(source="journal.channel")
    amount = MoneyOutField()
    currency = serializers.CharField(source="amount.currency")
    business_date = serializers.DateField(source="journal.business_date")
    narration = serializers.CharField(source="journal.narration")
    maker = serializers.CharField(source="journal.maker.username", allow_null=True, default=None)
    checker = serializers.CharField(
        source="journal.checker.username", allow_null=True, default=None
    )
    entered_at = serializers.DateTimeField(source="journal.entered_at")
    posted_at = serializers.DateTimeField(source="journal.posted_at", allow_null=True)
    reversal_of = serializers.CharField(allow_null=True)
    reversed_by = serializers.CharField(allow_null=True)
    entries = EntryOutputSerializer(many=True, help_text="Empty until the journal is posted.")

    class Meta:
        ref_name = "Transaction"


# --- idempotent responses ----------------------------------------------------------------------


def idempotency_claim(request: Request) -> IdempotencyClaim:
    """The request's claim on its ``Idempotency-Key``, scoped to the authenticated user.

    :raises IdempotencyKeyMissing: / :raises IdempotencyKeyInvalid:
    """
    return IdempotencyClaim.build(
        client_id=f"user:{request.user.pk}",
        key=request.headers.get(HEADER),
        method=request.method or "POST",
        path=request.path,
        body=request.data,
    )


def rendered(status: int, data: Any) -> StoredResponse:
    """Render a response once, to the bytes that are sent now and replayed later."""
    return StoredResponse(status=status, body=JSONRenderer().render(data))


def transaction_rendered(status: int, detail: JournalDetail) -> StoredResponse:
    return rendered(status, TransactionOutputSerializer(detail).data)


def http_response(stored: StoredResponse) -> HttpResponse:
    response = HttpResponse(stored.body, status=stored.status, content_type=stored.content_type)
    if stored.replayed:
        response[REPLAYED_HEADER] = "true"
    return response
