"""Fee endpoints: rules (read: all roles; write: supervisors), waivers, and the fee quote.

Amounts and rates travel as strings (``"12.50"``, ``"0.25"`` percent). Rule amounts are in
the rule's currency; tiers are ``[{"up_to": "1000.00" | null, "flat_fee": "1.00",
"rate_percent": "0.1"}]``. The quote runs the posting's own assessment without counting a use.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.api.common import cif_id_field, product_code_field
from accounts.models import Customer
from banksim.api.fields import (
    AmountField,
    CodeField,
    CurrencyField,
    IsoDateField,
    StrictInputSerializer,
    TextField,
)
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import ALL_ROLES, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from banksim.core.money import Money
from fees import selectors, services
from fees.assessment import FeeAssessment
from fees.calculators import plain
from fees.models import CHANNELS, CalcType, FeeRule, FeeWaiver, FreePeriod
from fees.specs import FeeRuleSpec, parse_amount, parse_rate, parse_tiers, spec_of, tiers_to_wire

TAG = ["fees"]
RULE_ID = OpenApiParameter("rule_id", int, OpenApiParameter.PATH)
# Events on which the payer is also debited the principal, so "total_debit" includes it.
PRINCIPAL_DEBIT_EVENTS = frozenset({"transfer_out", "cash_withdrawal"})


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


# --- rules -----------------------------------------------------------------------------------


class TierSerializer(serializers.Serializer):
    up_to = serializers.CharField(allow_null=True, help_text="Inclusive bound; null on the last.")
    flat_fee = serializers.CharField()
    rate_percent = serializers.CharField()

    class Meta:
        ref_name = "FeeTier"


class FeeRuleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    event = serializers.CharField()
    currency = serializers.CharField()
    product = serializers.CharField(allow_null=True)
    channel = serializers.CharField()
    segment = serializers.CharField()
    priority = serializers.IntegerField()
    calc_type = serializers.CharField()
    flat_fee = serializers.CharField()
    rate_percent = serializers.CharField()
    tiers = TierSerializer(many=True)
    min_fee = serializers.CharField(allow_null=True)
    max_fee = serializers.CharField(allow_null=True)
    free_uses = serializers.IntegerField()
    free_period = serializers.CharField()
    tax_rate_percent = serializers.CharField()
    income_account = serializers.CharField()
    tax_account = serializers.CharField(allow_null=True)
    effective_from = serializers.DateField()
    effective_to = serializers.DateField(allow_null=True)

    class Meta:
        ref_name = "FeeRule"


def _rule_data(rule: FeeRule) -> dict[str, Any]:
    spec = spec_of(rule)
    return {
        "id": rule.pk,
        "version": rule.version,
        "name": spec.name,
        "event": spec.event,
        "currency": spec.currency,
        "product": rule.product.code if rule.product_id else None,
        "channel": spec.channel,
        "segment": spec.segment,
        "priority": spec.priority,
        "calc_type": spec.calc_type,
        "flat_fee": spec.schedule().flat.to_wire(),
        "rate_percent": plain(spec.rate_percent),
        "tiers": tiers_to_wire(spec.tiers),
        "min_fee": spec.min_fee.to_wire() if spec.min_fee is not None else None,
        "max_fee": spec.max_fee.to_wire() if spec.max_fee is not None else None,
        "free_uses": spec.free_uses,
        "free_period": spec.free_period,
        "tax_rate_percent": plain(spec.tax_rate_percent),
        "income_account": rule.income_account.account_number,
        "tax_account": rule.tax_account.account_number if rule.tax_account_id else None,
        "effective_from": spec.effective_from,
        "effective_to": spec.effective_to,
    }


def _rule_response(rule_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    rule = selectors.fee_rule_get(rule_id=rule_id)
    return Response(FeeRuleOutputSerializer(_rule_data(rule)).data, status=status_code)


class FeeRuleInputSerializer(StrictInputSerializer):
    """Every rule field; the create view requires some, the update view none."""

    name = TextField(max_length=100)
    # Free text here so an unknown event is the domain's ``fees.unknown_event``.
    event = TextField(max_length=40)
    currency = CurrencyField()
    product = product_code_field(allow_null=True, required=False)
    channel = serializers.ChoiceField(choices=CHANNELS, allow_blank=True, required=False)
    segment = serializers.ChoiceField(
        choices=Customer.Segment.choices, allow_blank=True, required=False
    )
    priority = StrictIntField(min_value=0, max_value=32767, required=False)
    calc_type = serializers.ChoiceField(choices=CalcType.choices)
    flat_fee = AmountField(positive=False, required=False)
    rate_percent = TextField(max_length=16, required=False)
    tiers = serializers.JSONField(required=False)
    min_fee = AmountField(positive=False, required=False, allow_null=True)
    max_fee = AmountField(positive=False, required=False, allow_null=True)
    free_uses = StrictIntField(min_value=0, max_value=1_000_000, required=False)
    free_period = serializers.ChoiceField(choices=FreePeriod.choices, required=False)
    tax_rate_percent = TextField(max_length=16, required=False)
    income_account = _account_number_field()
    tax_account = _account_number_field(allow_null=True, required=False)
    effective_from = IsoDateField()
    effective_to = IsoDateField(allow_null=True, required=False)

    class Meta:
        ref_name = "FeeRuleInput"


class FeeRuleUpdateInputSerializer(FeeRuleInputSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False

    class Meta:
        ref_name = "FeeRuleUpdateInput"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("send at least one field to change", "empty")
        return attrs


def _spec_changes(data: dict[str, Any], currency: str) -> dict[str, Any]:
    """Turn validated wire fields into ``FeeRuleSpec`` fields (codes and numbers to ids)."""
    changes: dict[str, Any] = {}
    for name in ("name", "event", "currency", "channel", "segment", "priority", "calc_type"):
        if name in data:
            changes[name] = data[name]
    for name in ("free_uses", "free_period", "effective_from", "effective_to"):
        if name in data:
            changes[name] = data[name]
    if "product" in data:
        code = data["product"]
        changes["product_id"] = None if code is None else selectors.product_id_for_code(code=code)
    for name in ("income_account", "tax_account"):
        if name in data:
            number = data[name]
            changes[f"{name}_id"] = (
                None if number is None else account_selectors.account_get(account_number=number).pk
            )
    if "flat_fee" in data:
        changes["flat_fee"] = parse_amount("flat_fee", data["flat_fee"], currency)
    for name in ("min_fee", "max_fee"):
        if name in data:
            text = data[name]
            changes[name] = None if text is None else parse_amount(name, text, currency)
    for name in ("rate_percent", "tax_rate_percent"):
        if name in data:
            changes[name] = parse_rate(name, data[name])
    if "tiers" in data:
        changes["tiers"] = parse_tiers(data["tiers"], currency)
    return changes


class FeeRuleListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        event = TextField(max_length=40, required=False)
        currency = CurrencyField(required=False)
        in_force_on = IsoDateField(required=False)

        class Meta:
            ref_name = "FeeRuleFilter"

    OutputSerializer = page_serializer(FeeRuleOutputSerializer, "FeeRulePageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="fee_rule_list",
        summary="List fee rules",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data

        count, rules = page_of(
            selectors.fee_rule_list(
                event=params.get("event", ""),
                currency=params.get("currency", ""),
                in_force_on=params.get("in_force_on"),
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


class FeeRuleCreateApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]
    InputSerializer = FeeRuleInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="fee_rule_create",
        summary="Create a fee rule (supervisor)",
        request=InputSerializer,
        responses={201: FeeRuleOutputSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        spec = FeeRuleSpec(**_spec_changes(data, data["currency"]))

        rule = services.fee_rule_create(spec=spec, actor=request.user)

        return _rule_response(rule.pk, status.HTTP_201_CREATED)


class FeeRuleDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="fee_rule_get",
        summary="Read a fee rule",
        parameters=[RULE_ID],
        responses={200: FeeRuleOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, rule_id: int) -> Response:
        return _rule_response(rule_id)


class FeeRuleUpdateApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]
    InputSerializer = FeeRuleUpdateInputSerializer

    @extend_schema(
        tags=TAG,
        operation_id="fee_rule_update",
        summary="Change a fee rule (supervisor); bumps its version",
        parameters=[RULE_ID],
        request=InputSerializer,
        responses={200: FeeRuleOutputSerializer, **problems(400, 404, 409)},
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = selectors.fee_rule_get(rule_id=rule_id)
        changes = _spec_changes(serializer.validated_data, rule.currency)

        services.fee_rule_update(rule_id=rule.pk, changes=changes, actor=request.user)

        return _rule_response(rule.pk)


# --- waivers ---------------------------------------------------------------------------------


class FeeWaiverOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(source="account.account_number", allow_null=True, default=None)
    customer = serializers.CharField(source="customer.cif_id", allow_null=True, default=None)
    event = serializers.CharField()
    reason = serializers.CharField()
    valid_from = serializers.DateField()
    expires_on = serializers.DateField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "FeeWaiver"


def _waiver_data(waiver: FeeWaiver) -> dict[str, Any]:
    return FeeWaiverOutputSerializer(waiver).data


class FeeWaiverCreateApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(StrictInputSerializer):
        account = _account_number_field(required=False)
        customer = cif_id_field(required=False)
        event = TextField(max_length=40, required=False, allow_blank=True, default="")
        reason = TextField(max_length=200)
        valid_from = IsoDateField(required=False)
        expires_on = IsoDateField()

        class Meta:
            ref_name = "FeeWaiverInput"

    @extend_schema(
        tags=TAG,
        operation_id="fee_waiver_create",
        summary="Waive an account's or a customer's fees until a date (supervisor)",
        request=InputSerializer,
        responses={201: FeeWaiverOutputSerializer, **problems(400, 404)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account_id = customer_id = None
        if "account" in data:
            account_id = account_selectors.customer_account_get(account_number=data["account"]).pk
        if "customer" in data:
            customer_id = account_selectors.customer_get(cif_id=data["customer"]).pk

        waiver = services.fee_waiver_create(
            account_id=account_id,
            customer_id=customer_id,
            event=data["event"],
            reason=data["reason"],
            valid_from=data.get("valid_from") or clock.business_date(),
            expires_on=data["expires_on"],
            actor=request.user,
            now=clock.now(),
        )

        waiver = FeeWaiver.objects.select_related("account", "customer").get(pk=waiver.pk)
        return Response(_waiver_data(waiver), status=status.HTTP_201_CREATED)


class FeeWaiverListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(StrictInputSerializer):
        account = _account_number_field()

        class Meta:
            ref_name = "FeeWaiverFilter"

    @extend_schema(
        tags=TAG,
        operation_id="fee_waiver_list",
        summary="Waivers of an account and of its customer, newest first",
        parameters=[FilterSerializer],
        responses={200: FeeWaiverOutputSerializer(many=True), **problems(400, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        account = account_selectors.customer_account_get(
            account_number=filters.validated_data["account"]
        )

        waivers = selectors.fee_waiver_list(account_id=account.pk)

        return Response([_waiver_data(w) for w in waivers])


# --- quote -----------------------------------------------------------------------------------


class FeeChargeOutputSerializer(serializers.Serializer):
    rule = serializers.IntegerField(source="rule_id")
    version = serializers.IntegerField(source="rule_version")
    event = serializers.CharField()
    base_amount = serializers.CharField()
    fee = serializers.CharField()
    tax = serializers.CharField()
    waived_by = serializers.IntegerField(allow_null=True)
    free_use = serializers.BooleanField()
    inputs = serializers.DictField()

    class Meta:
        ref_name = "FeeCharge"


class FeeQuoteOutputSerializer(serializers.Serializer):
    event = serializers.CharField()
    account = serializers.CharField()
    amount = serializers.CharField()
    currency = serializers.CharField()
    fee = serializers.CharField()
    tax = serializers.CharField()
    total_debit = serializers.CharField(
        help_text="What the payer is debited: fee + tax, plus the amount for transfer_out "
        "and cash_withdrawal."
    )
    charges = FeeChargeOutputSerializer(many=True)

    class Meta:
        ref_name = "FeeQuote"


class FeeQuoteApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(StrictInputSerializer):
        event = TextField(max_length=40)
        account = _account_number_field()
        amount = AmountField(positive=False)
        currency = CurrencyField()
        channel = serializers.ChoiceField(choices=CHANNELS)

        class Meta:
            ref_name = "FeeQuoteInput"

    @extend_schema(
        tags=TAG,
        operation_id="fee_quote",
        summary="What would this cost? Same assessment as the posting, nothing is written",
        parameters=[FilterSerializer],
        responses={200: FeeQuoteOutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        account = account_selectors.customer_account_get(account_number=params["account"])
        amount = parse_amount("amount", params["amount"], params["currency"])

        assessment = services.fee_assess(
            event=params["event"],
            payer_account_id=account.pk,
            amount=amount,
            channel=params["channel"],
            business_date=clock.business_date(calendar_code=account.branch.calendar.code),
            count_usage=False,
        )

        return Response(
            FeeQuoteOutputSerializer(
                _quote_data(params["event"], account.account_number, amount, assessment)
            ).data
        )


def _quote_data(
    event: str, account_number: str, amount: Money, assessment: FeeAssessment
) -> dict[str, Any]:
    fee = assessment.fee_total(amount.currency)
    tax = assessment.tax_total(amount.currency)
    total = fee + tax + (amount if event in PRINCIPAL_DEBIT_EVENTS else Money.zero(amount.currency))
    return {
        "event": event,
        "account": account_number,
        "amount": amount.to_wire(),
        "currency": amount.currency,
        "fee": fee.to_wire(),
        "tax": tax.to_wire(),
        "total_debit": total.to_wire(),
        "charges": assessment.details(),
    }
