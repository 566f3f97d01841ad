"""Routes of the CIF/accounts API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from accounts.api import accounts, catalog, customers
from banksim.api.routing import by_method

urlpatterns: list[URLPattern] = [
    path(
        "customers",
        by_method(get=customers.CustomerListApi, post=customers.CustomerCreateApi),
        name="customers",
    ),
    path(
        "customers/<str:cif_id>",
        by_method(get=customers.CustomerDetailApi, patch=customers.CustomerUpdateApi),
        name="customer",
    ),
    path("customers/<str:cif_id>/kyc", customers.CustomerKycSetApi.as_view(), name="customer-kyc"),
    path("branches", catalog.BranchListApi.as_view(), name="branches"),
    path("products", catalog.ProductListApi.as_view(), name="products"),
    path(
        "accounts",
        by_method(get=accounts.AccountListApi, post=accounts.AccountOpenApi),
        name="accounts",
    ),
    path("accounts/<str:account_number>", accounts.AccountDetailApi.as_view(), name="account"),
    path(
        "accounts/<str:account_number>/freeze",
        accounts.AccountFreezeApi.as_view(),
        name="account-freeze",
    ),
    path(
        "accounts/<str:account_number>/unfreeze",
        accounts.AccountUnfreezeApi.as_view(),
        name="account-unfreeze",
    ),
    path(
        "accounts/<str:account_number>/close",
        accounts.AccountCloseApi.as_view(),
        name="account-close",
    ),
]
