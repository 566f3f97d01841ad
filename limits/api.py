"""Limit endpoints: rules (read: all roles; write: supervisors), an account's override, and an
account's limits with today's usage and headroom.

Amounts travel as strings in the rule's currency (``"1000.00"``); counts as JSON integers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.api.common import cif_id_field, product_code_field
from banksim.api.fields import (
    AmountField,
    CodeField,
    CurrencyField,
    StrictInputSerializer,
    TextField,
)
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import ALL_ROLES, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from banksim.core.money import InvalidAmount, Money
from ledger.models import Journal
from limits import selectors, services
from limits.models import LIMITED_TXN_TYPES, LimitRule
from limits.selectors import LimitView
from limits.services import MAX_LIMIT_COUNT, UNSET, LimitRuleChanges, LimitRuleSpec

TAG = ["limits"]
RULE_ID = OpenApiParameter("rule_id", int, OpenApiParameter.PATH)
ACCOUNT_NUMBER = OpenApiParameter(
    "account_number", str, OpenApiParameter.PATH, description="12 digits, e.g. 000100000181"
)
TXN_TYPE_CHOICES = [(t.value, t.label) for t in LIMITED_TXN_TYPES]


def _account_number_field(**kwargs: Any) -> CodeField:
    return CodeField(
        pattern=r"[0-9]{12}", name="account number (12 digits)", max_length=12, **kwargs
    )


class StrictIntField(serializers.IntegerField):
    """A JSON integer; ``"5"``, ``5.0`` and ``true`` are refused."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBoolField(serializers.BooleanField):
    """JSON ``true`` or ``false`` only; ``"yes"``, ``1`` and ``"true"`` are refused."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _amount(field: str, text: str | None, currency: str) -> Money | None:
    """Pair a validated wire amount with the rule's currency; the error names ``field``.

    :raises InvalidAmount: for more decimals than the currency allows
    """
    if text is None:
        return None
    try:
        return Money.parse(text, currency)
    except InvalidAmount as exc:
        raise InvalidAmount(exc.detail, errors={field: [exc.detail]}) from exc


def _wire(minor: int | None, currency: str) -> str | None:
    return None if minor is None else Money.from_minor(minor, currency).to_wire()


class LimitRuleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=LimitRule.Scope.choices)
    account = serializers.CharField(allow_null=True, help_text="Account number (scope account).")
    product = serializers.CharField(allow_null=True, help_text="Product code (scope product).")
    customer = serializers.CharField(allow_null=True, help_text="CIF id (scope customer).")
    channel = serializers.CharField(help_text="'' applies to every channel.")
    txn_type = serializers.CharField(help_text="'' applies to every limited type.")
    currency = serializers.CharField()
    max_amount = serializers.CharField(allow_null=True, help_text="Per business day.")
    max_count = serializers.IntegerField(allow_null=True, help_text="Debits per business day.")
    on_breach = serializers.ChoiceField(choices=LimitRule.OnBreach.choices)
    is_override = serializers.BooleanField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "LimitRule"


def _rule_data(rule: LimitRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "scope": rule.scope,
        "account": rule.account.account_number if rule.account_id else None,
        "product": rule.product.code if rule.product_id else None,
        "customer": rule.customer.cif_id if rule.customer_id else None,
        "channel": rule.channel,
        "txn_type": rule.txn_type,
        "currency": rule.currency,
        "max_amount": _wire(rule.max_amount_minor, rule.currency),
        "max_count": rule.max_count,
        "on_breach": rule.on_breach,
        "is_override": rule.is_override,
        "is_active": rule.is_active,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def _rule_response(rule_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    rule = selectors.limit_rule_get(rule_id=rule_id)
    return Response(LimitRuleOutputSerializer(_rule_data(rule)).data, status=status_code)


class LimitInputSerializer(StrictInputSerializer):
    server_owned: ClassVar[frozenset[str]] = StrictInputSerializer.server_owned | {
        "is_override",
        "scope",
        "created_by",
    }


def _max_amount_field() -> AmountField:
    return AmountField(required=False, allow_null=True, default=None)


def _max_count_field() -> StrictIntField:
    return StrictIntField(
        min_value=1, max_value=MAX_LIMIT_COUNT, required=False, allow_null=True, default=None
    )


# --- rules -----------------------------------------------------------------------------------


class LimitRuleListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        currency = CurrencyField(required=False)
        is_active = serializers.ChoiceField(choices=["true", "false"], required=False)
        account = _account_number_field(required=False)

        class Meta:
            ref_name = "LimitRuleFilter"

    OutputSerializer = page_serializer(LimitRuleOutputSerializer, "LimitRulePageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="limit_rule_list",
        summary="List limit rules",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        account_id = (
            account_selectors.account_get(account_number=params["account"]).pk
            if "account" in params
            else None
        )

        count, rules = page_of(
            selectors.limit_rule_list(
                currency=params.get("currency", ""),
                is_active={"true": True, "false": False}.get(params.get("is_active", "")),
                account_id=account_id,
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
                    "results": [_rule_data(rule) for rule in rules],
                }
            ).data
        )


class LimitRuleCreateApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(LimitInputSerializer):
        name = TextField(max_length=100, required=False, allow_blank=True, default="")
        account = _account_number_field(required=False, allow_null=True, default=None)
        product = product_code_field(required=False, allow_null=True, default=None)
        customer = cif_id_field(required=False, allow_null=True, default=None)
        channel = serializers.ChoiceField(
            choices=Journal.Channel.choices, allow_blank=True, required=False, default=""
        )
        txn_type = serializers.ChoiceField(
            choices=TXN_TYPE_CHOICES, allow_blank=True, required=False, default=""
        )
        currency = CurrencyField()
        max_amount = _max_amount_field()
        max_count = _max_count_field()
        on_breach = serializers.ChoiceField(
            choices=LimitRule.OnBreach.choices, required=False, default=LimitRule.OnBreach.REFUSE
        )
        is_active = StrictBoolField(required=False, default=True)

        class Meta:
            ref_name = "LimitRuleCreateInput"

    @extend_schema(
        tags=TAG,
        operation_id="limit_rule_create",
        summary="Create a daily limit rule (supervisor)",
        request=InputSerializer,
        responses={201: LimitRuleOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scope = selectors.limit_scope_get(
            account_number=data["account"], product_code=data["product"], cif_id=data["customer"]
        )

        rule = services.limit_rule_create(
            spec=LimitRuleSpec(
                currency=data["currency"],
                max_amount=_amount("max_amount", data["max_amount"], data["currency"]),
                max_count=data["max_count"],
                on_breach=data["on_breach"],
                channel=data["channel"],
                txn_type=data["txn_type"],
                account_id=scope.account_id,
                product_id=scope.product_id,
                customer_id=scope.customer_id,
                name=data["name"],
                is_active=data["is_active"],
            ),
            actor=request.user,
            now=clock.now(),
        )

        return _rule_response(rule.pk, status.HTTP_201_CREATED)


class LimitRuleDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="limit_rule_get",
        summary="Read a limit rule",
        parameters=[RULE_ID],
        responses={200: LimitRuleOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, rule_id: int) -> Response:
        return _rule_response(rule_id)


class LimitRuleUpdateApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    # What a rule covers is fixed: to change it, switch the rule off and create another.
    IMMUTABLE = frozenset({"account", "product", "customer", "currency", "channel", "txn_type"})

    class InputSerializer(LimitInputSerializer):
        name = TextField(max_length=100, required=False, allow_blank=True)
        max_amount = AmountField(required=False, allow_null=True)
        max_count = StrictIntField(
            min_value=1, max_value=MAX_LIMIT_COUNT, required=False, allow_null=True
        )
        on_breach = serializers.ChoiceField(choices=LimitRule.OnBreach.choices, required=False)
        is_active = StrictBoolField(required=False)

        class Meta:
            ref_name = "LimitRuleUpdateInput"

        def to_internal_value(self, data: Any) -> Any:
            if isinstance(data, dict):
                fixed = sorted(set(data) & LimitRuleUpdateApi.IMMUTABLE)
                if fixed:
                    raise serializers.ValidationError(
                        {
                            name: [
                                serializers.ErrorDetail(
                                    "cannot be changed; switch this rule off and create another",
                                    "immutable",
                                )
                            ]
                            for name in fixed
                        }
                    )
            return super().to_internal_value(data)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs:
                raise serializers.ValidationError("send at least one field to change", "empty")
            return attrs

    @extend_schema(
        tags=TAG,
        operation_id="limit_rule_update",
        summary="Change a rule's limits, breach action, name or active flag (supervisor)",
        parameters=[RULE_ID],
        request=InputSerializer,
        responses={200: LimitRuleOutputSerializer, **problems(400, 404)},
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rule = selectors.limit_rule_get(rule_id=rule_id)

        services.limit_rule_update(
            rule_id=rule.pk,
            changes=LimitRuleChanges(
                name=data.get("name", UNSET),
                max_amount=(
                    _amount("max_amount", data["max_amount"], rule.currency)
                    if "max_amount" in data
                    else UNSET
                ),
                max_count=data.get("max_count", UNSET),
                on_breach=data.get("on_breach", UNSET),
                is_active=data.get("is_active", UNSET),
            ),
            actor=request.user,
            now=clock.now(),
        )

        return _rule_response(rule.pk)


# --- per account -----------------------------------------------------------------------------


class AccountLimitOverrideSetApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(LimitInputSerializer):
        """The whole override: fields not sent take their defaults (PUT replaces)."""

        name = TextField(max_length=100, required=False, allow_blank=True, default="")
        channel = serializers.ChoiceField(
            choices=Journal.Channel.choices, allow_blank=True, required=False, default=""
        )
        txn_type = serializers.ChoiceField(
            choices=TXN_TYPE_CHOICES, allow_blank=True, required=False, default=""
        )
        max_amount = _max_amount_field()
        max_count = _max_count_field()
        on_breach = serializers.ChoiceField(
            choices=LimitRule.OnBreach.choices, required=False, default=LimitRule.OnBreach.REFUSE
        )

        class Meta:
            ref_name = "LimitOverrideInput"

    @extend_schema(
        tags=TAG,
        operation_id="account_limit_override_set",
        summary="Set or replace an account's limit override (supervisor)",
        description="The override replaces every other limit rule of the account for the "
        "debits it covers, even when it is looser. See docs/limits.md.",
        parameters=[ACCOUNT_NUMBER],
        request=InputSerializer,
        responses={
            200: LimitRuleOutputSerializer,
            201: LimitRuleOutputSerializer,
            **problems(400, 404, 422),
        },
    )
    def put(self, request: Request, account_number: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = account_selectors.account_get(account_number=account_number)

        rule, created = services.limit_override_set(
            account_id=account.pk,
            max_amount=_amount("max_amount", data["max_amount"], account.currency),
            max_count=data["max_count"],
            on_breach=data["on_breach"],
            channel=data["channel"],
            txn_type=data["txn_type"],
            name=data["name"],
            actor=request.user,
            now=clock.now(),
        )

        return _rule_response(rule.pk, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AccountLimitOutputSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField(source="rule.pk")
    name = serializers.CharField(source="rule.name")
    scope = serializers.CharField(source="rule.scope")
    channel = serializers.CharField(source="rule.channel")
    txn_type = serializers.CharField(source="rule.txn_type")
    on_breach = serializers.CharField(source="rule.on_breach")
    is_override = serializers.BooleanField(source="rule.is_override")
    in_force = serializers.BooleanField(
        help_text="False when the account's override replaces this rule for all it covers."
    )
    limit_amount = serializers.SerializerMethodField()
    used_amount = serializers.SerializerMethodField()
    remaining_amount = serializers.SerializerMethodField()
    limit_count = serializers.IntegerField(allow_null=True)
    used_count = serializers.IntegerField()
    remaining_count = serializers.IntegerField(allow_null=True)

    class Meta:
        ref_name = "AccountLimit"

    def get_limit_amount(self, view: LimitView) -> str | None:
        return view.limit_amount.to_wire() if view.limit_amount is not None else None

    def get_used_amount(self, view: LimitView) -> str:
        return view.used_amount.to_wire()

    def get_remaining_amount(self, view: LimitView) -> str | None:
        return view.remaining_amount.to_wire() if view.remaining_amount is not None else None


class AccountLimitsApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class OutputSerializer(serializers.Serializer):
        account_number = serializers.CharField()
        currency = serializers.CharField()
        business_date = serializers.DateField()
        limits = AccountLimitOutputSerializer(many=True)

        class Meta:
            ref_name = "AccountLimits"

    @extend_schema(
        tags=TAG,
        operation_id="account_limits_get",
        summary="An account's daily limits with today's usage and headroom",
        parameters=[ACCOUNT_NUMBER],
        responses={200: OutputSerializer, **problems(404)},
    )
    def get(self, request: Request, account_number: str) -> Response:
        account = account_selectors.account_get(account_number=account_number)
        business_date = clock.business_date(calendar_code=account.branch.calendar.code)

        views = selectors.limit_usage_today(account_id=account.pk, business_date=business_date)

        return Response(
            self.OutputSerializer(
                {
                    "account_number": account.account_number,
                    "currency": account.currency,
                    "business_date": business_date,
                    "limits": views,
                }
            ).data
        )
