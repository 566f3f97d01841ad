"""The bank's static data as tellers see it: branches and products with today's terms."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors
from accounts.models import Product, ProductTerms
from banksim.api.fields import CurrencyField, StrictInputSerializer
from banksim.api.permissions import ALL_ROLES, roles
from banksim.api.schema import problems
from banksim.core import clock
from banksim.core.money import Money


class BranchListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class OutputSerializer(serializers.Serializer):
        sol_code = serializers.CharField()
        name = serializers.CharField()
        calendar = serializers.CharField(source="calendar.code")
        business_date = serializers.DateField(source="calendar.business_date")

        class Meta:
            ref_name = "Branch"

    @extend_schema(
        tags=["static data"],
        operation_id="branch_list",
        summary="List branches (SOLs)",
        responses={200: OutputSerializer(many=True), **problems()},
    )
    def get(self, request: Request) -> Response:
        branches = list(selectors.branch_list())
        return Response(self.OutputSerializer(branches, many=True).data)


class ProductTermsOutputSerializer(serializers.Serializer):
    """Amounts are strings in the product currency; rates are annual percentages as strings."""

    effective_from = serializers.DateField()
    min_balance = serializers.SerializerMethodField()
    overdraft_allowed = serializers.BooleanField()
    overdraft_limit = serializers.SerializerMethodField()
    credit_interest_rate = serializers.DecimalField(max_digits=7, decimal_places=4)
    debit_interest_rate = serializers.DecimalField(max_digits=7, decimal_places=4)
    accrual_basis = serializers.CharField()
    dormancy_days = serializers.IntegerField(allow_null=True)

    class Meta:
        ref_name = "ProductTerms"

    def get_min_balance(self, terms: ProductTerms) -> str:
        return Money.from_minor(terms.min_balance_minor, terms.product.currency).to_wire()

    def get_overdraft_limit(self, terms: ProductTerms) -> str:
        return Money.from_minor(terms.overdraft_limit_minor, terms.product.currency).to_wire()


class ProductListApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    class FilterSerializer(StrictInputSerializer):
        currency = CurrencyField(required=False)
        scheme_type = serializers.ChoiceField(choices=Product.SchemeType.choices, required=False)

        class Meta:
            ref_name = "ProductFilter"

    class OutputSerializer(serializers.Serializer):
        code = serializers.CharField(source="product.code")
        name = serializers.CharField(source="product.name")
        scheme_type = serializers.CharField(source="product.scheme_type")
        currency = serializers.CharField(source="product.currency")
        gl_subhead = serializers.CharField(source="product.gl_subhead.code")
        is_active = serializers.BooleanField(source="product.is_active")
        terms = ProductTermsOutputSerializer(allow_null=True, help_text="Terms in force today.")

        class Meta:
            ref_name = "Product"

    @extend_schema(
        tags=["static data"],
        operation_id="product_list",
        summary="List products with the terms in force on the business date",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)

        offers = selectors.product_catalog(on=clock.business_date(), **filters.validated_data)

        return Response(self.OutputSerializer(offers, many=True).data)
