"""Static data endpoints: branches, and products with the terms in force on the business date."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Calendar, Product
from tests.api.accounts_support import assert_problem
from tests.factories import BranchFactory, ProductFactory, ProductTermsFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products"


def _by_code(response):
    assert response.status_code == 200, response.content
    return {row["code"]: row for row in response.json()}


class TestBranchList:
    def test_lists_branches_by_sol_code_with_their_business_date(self, bank, make_client, auditor):
        BranchFactory(sol_code="0002", name="Ikeja", calendar=Calendar.objects.get(code="MAIN"))

        response = make_client(auditor).get("/api/v1/branches")

        assert response.status_code == 200
        assert response.json() == [
            {
                "sol_code": "0001",
                "name": "Head office",
                "calendar": "MAIN",
                "business_date": "2026-11-30",
            },
            {
                "sol_code": "0002",
                "name": "Ikeja",
                "calendar": "MAIN",
                "business_date": "2026-11-30",
            },
        ]


class TestProductList:
    def test_lists_every_product_with_amounts_and_rates_as_strings(self, bank, make_client, teller):
        response = make_client(teller).get(PRODUCTS)

        products = _by_code(response)
        assert set(products) == set(bank.products)
        current = products["CAA-USD"]
        assert current["currency"] == "USD"
        assert current["scheme_type"] == "CAA"
        assert current["gl_subhead"] == "20200"
        assert current["is_active"] is True
        assert current["terms"] == {
            "effective_from": "2020-01-01",
            "min_balance": "0.00",
            "overdraft_allowed": True,
            "overdraft_limit": "50000.00",
            "credit_interest_rate": "2.5000",
            "debit_interest_rate": "0.0000",
            "accrual_basis": "ACT/365",
            "dormancy_days": 730,
        }

    def test_renders_amounts_in_each_currencys_minor_unit(self, bank, make_client, teller):
        response = make_client(teller).get(PRODUCTS)

        products = _by_code(response)
        assert products["CAA-JPY"]["terms"]["overdraft_limit"] == "50000"
        assert products["CAA-KWD"]["terms"]["overdraft_limit"] == "50000.000"

    def test_shows_the_latest_terms_in_force_and_not_future_ones(self, bank, make_client, teller):
        savings = bank.products["SBA-USD"]
        ProductTermsFactory(
            product=savings,
            effective_from=bank.business_date - dt.timedelta(days=30),
            min_balance_minor=10_000,
            credit_interest_rate=Decimal("3.1250"),
        )
        ProductTermsFactory(
            product=savings,
            effective_from=bank.business_date + dt.timedelta(days=1),
            min_balance_minor=99_900,
            credit_interest_rate=Decimal("9.0000"),
        )

        response = make_client(teller).get(PRODUCTS, {"currency": "USD"})

        terms = _by_code(response)["SBA-USD"]["terms"]
        assert terms["effective_from"] == (bank.business_date - dt.timedelta(days=30)).isoformat()
        assert terms["min_balance"] == "100.00"
        assert terms["credit_interest_rate"] == "3.1250"

    def test_gives_null_terms_to_a_product_not_yet_in_force(self, bank, make_client, teller):
        ProductFactory(
            code="SBA-NEW", currency="USD", gl_subhead=bank.products["SBA-USD"].gl_subhead
        )

        response = make_client(teller).get(PRODUCTS)

        assert _by_code(response)["SBA-NEW"]["terms"] is None

    def test_filters_by_currency_and_scheme_type(self, bank, make_client, auditor):
        response = make_client(auditor).get(PRODUCTS, {"currency": "KWD", "scheme_type": "SBA"})

        assert list(_by_code(response)) == ["SBA-KWD"]

    @pytest.mark.parametrize("currency", ["usd", "XYZ", "US", "USDX", "ＵＳＤ"])
    def test_refuses_an_unknown_or_lowercase_currency(self, bank, make_client, teller, currency):
        response = make_client(teller).get(PRODUCTS, {"currency": currency})

        assert_problem(response, 400, "validation_error", field="currency")

    def test_refuses_an_unknown_query_parameter(self, bank, make_client, teller):
        response = make_client(teller).get(PRODUCTS, {"ccy": "USD"})

        body = assert_problem(response, 400, "validation_error", field="ccy")
        assert body["errors"][0]["code"] == "unknown_field"

    def test_includes_inactive_products_marked_as_such(self, bank, make_client, teller):
        Product.objects.filter(code="SBA-JPY").update(is_active=False)

        response = make_client(teller).get(PRODUCTS, {"currency": "JPY"})

        assert _by_code(response)["SBA-JPY"]["is_active"] is False
