"""Routes of the limits API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from banksim.api.routing import by_method
from limits import api

urlpatterns: list[URLPattern] = [
    path(
        "limit-rules",
        by_method(get=api.LimitRuleListApi, post=api.LimitRuleCreateApi),
        name="limit-rules",
    ),
    path(
        "limit-rules/<int:rule_id>",
        by_method(get=api.LimitRuleDetailApi, patch=api.LimitRuleUpdateApi),
        name="limit-rule",
    ),
    path(
        "accounts/<str:account_number>/limit-override",
        api.AccountLimitOverrideSetApi.as_view(),
        name="account-limit-override",
    ),
    path(
        "accounts/<str:account_number>/limits",
        api.AccountLimitsApi.as_view(),
        name="account-limits",
    ),
]
