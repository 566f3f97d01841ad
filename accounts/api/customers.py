"""CIF endpoints: create, search, read, change contact details, record a KYC decision."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.common import cif_id_field, sol_code_field
from accounts.models import Customer
from banksim.api.fields import CodeField, IsoDateField, StrictInputSerializer, TextField
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import ALL_ROLES, OPERATORS, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock

TAG = ["customers"]
CIF_ID = OpenApiParameter("cif_id", str, OpenApiParameter.PATH, description="e.g. C000000001")


def _phone_field(**kwargs: object) -> CodeField:
    return CodeField(
        pattern=r"\+?[0-9][0-9 -]{3,30}",
        name="phone number (digits, spaces, dashes, optional leading +)",
        max_length=32,
        **kwargs,
    )


class CustomerOutputSerializer(serializers.Serializer):
    cif_id = serializers.CharField()
    customer_type = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    legal_name = serializers.CharField()
    display_name = serializers.CharField()
    birth_date = serializers.DateField()
    national_id_type = serializers.CharField()
    national_id = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    address = serializers.CharField()
    kyc_status = serializers.CharField()
    kyc_verified_on = serializers.DateField(allow_null=True)
    risk_grade = serializers.CharField()
    segment = serializers.CharField()
    home_branch = serializers.CharField(source="home_branch.sol_code")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Customer"


class CustomerCreateApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(StrictInputSerializer):
        customer_type = serializers.ChoiceField(choices=Customer.CustomerType.choices)
        first_name = TextField(max_length=100, required=False, allow_blank=True, default="")
        last_name = TextField(max_length=100, required=False, allow_blank=True, default="")
        legal_name = TextField(max_length=200, required=False, allow_blank=True, default="")
        birth_date = IsoDateField()
        national_id_type = serializers.ChoiceField(choices=Customer.IdType.choices)
        # Upper-case ASCII only, so "ab-123" and "AB-123" cannot become two customers.
        national_id = CodeField(
            pattern=r"[A-Z0-9][A-Z0-9/-]*",
            name="national id (A-Z, 0-9, '-', '/')",
            max_length=40,
        )
        email = serializers.EmailField(max_length=200, required=False, allow_blank=True, default="")
        phone = _phone_field(required=False, allow_blank=True, default="")
        address = TextField(max_length=300, required=False, allow_blank=True, default="")
        risk_grade = serializers.ChoiceField(
            choices=Customer.RiskGrade.choices, required=False, default=Customer.RiskGrade.LOW
        )
        segment = serializers.ChoiceField(
            choices=Customer.Segment.choices, required=False, default=Customer.Segment.RETAIL
        )
        home_branch = sol_code_field()

        class Meta:
            ref_name = "CustomerCreateInput"

    @extend_schema(
        tags=TAG,
        operation_id="customer_create",
        summary="Create a CIF record (KYC pending)",
        request=InputSerializer,
        responses={201: CustomerOutputSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        branch = selectors.branch_get(sol_code=data.pop("home_branch"))

        customer = services.customer_create(
            data=services.CustomerData(home_branch_id=branch.pk, **data),
            actor=request.user,
            now=clock.now(),
        )

        customer.home_branch = branch
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(PageInputSerializer):
        q = TextField(max_length=100, required=False, help_text="Name prefix, any case.")
        national_id = TextField(max_length=40, required=False)
        kyc_status = serializers.ChoiceField(choices=Customer.KycStatus.choices, required=False)
        cif_id = cif_id_field(required=False)

        class Meta:
            ref_name = "CustomerFilter"

    OutputSerializer = page_serializer(CustomerOutputSerializer, "CustomerPageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="customer_list",
        summary="Search customers",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        limit, offset = params.pop("limit"), params.pop("offset")

        count, customers = page_of(selectors.customer_list(**params), limit=limit, offset=offset)

        return Response(
            self.OutputSerializer(
                {"count": count, "limit": limit, "offset": offset, "results": customers}
            ).data
        )


class CustomerDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="customer_get",
        summary="Read a customer",
        parameters=[CIF_ID],
        responses={200: CustomerOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, cif_id: str) -> Response:
        customer = selectors.customer_get(cif_id=cif_id)
        return Response(CustomerOutputSerializer(customer).data)


class CustomerUpdateApi(APIView):
    permission_classes = [roles(write=OPERATORS)]

    class InputSerializer(StrictInputSerializer):
        """Contact details, risk grade and segment only; identity and KYC are not editable."""

        email = serializers.EmailField(max_length=200, required=False, allow_blank=True)
        phone = _phone_field(required=False, allow_blank=True)
        address = TextField(max_length=300, required=False, allow_blank=True)
        risk_grade = serializers.ChoiceField(choices=Customer.RiskGrade.choices, required=False)
        segment = serializers.ChoiceField(choices=Customer.Segment.choices, required=False)

        class Meta:
            ref_name = "CustomerUpdateInput"

        def validate(self, attrs: dict[str, object]) -> dict[str, object]:
            if not attrs:
                raise serializers.ValidationError("send at least one field to change", "empty")
            return attrs

    @extend_schema(
        tags=TAG,
        operation_id="customer_update",
        summary="Change contact details, risk grade or segment",
        parameters=[CIF_ID],
        request=InputSerializer,
        responses={200: CustomerOutputSerializer, **problems(400, 404)},
    )
    def patch(self, request: Request, cif_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = selectors.customer_get(cif_id=cif_id)

        customer = services.customer_update(
            customer_id=customer.pk, changes=dict(serializer.validated_data), actor=request.user
        )

        return Response(CustomerOutputSerializer(customer).data)


class CustomerKycSetApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(StrictInputSerializer):
        status = serializers.ChoiceField(
            choices=[
                Customer.KycStatus.VERIFIED,
                Customer.KycStatus.REJECTED,
                Customer.KycStatus.EXPIRED,
            ]
        )
        reason = TextField(max_length=200)

        class Meta:
            ref_name = "CustomerKycInput"

    @extend_schema(
        tags=TAG,
        operation_id="customer_kyc_set",
        summary="Record a KYC decision (supervisor)",
        parameters=[CIF_ID],
        request=InputSerializer,
        responses={200: CustomerOutputSerializer, **problems(400, 404, 422)},
    )
    def post(self, request: Request, cif_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = selectors.customer_get(cif_id=cif_id)

        customer = services.customer_kyc_set(
            customer_id=customer.pk,
            status=serializer.validated_data["status"],
            reason=serializer.validated_data["reason"],
            actor=request.user,
            business_date=clock.business_date(calendar_code=customer.home_branch.calendar.code),
        )

        return Response(CustomerOutputSerializer(customer).data)
