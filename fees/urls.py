"""Routes of the fee API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from banksim.api.routing import by_method
from fees import api

urlpatterns: list[URLPattern] = [
    path(
        "fee-rules",
        by_method(get=api.FeeRuleListApi, post=api.FeeRuleCreateApi),
        name="fee-rules",
    ),
    path(
        "fee-rules/<int:rule_id>",
        by_method(get=api.FeeRuleDetailApi, patch=api.FeeRuleUpdateApi),
        name="fee-rule",
    ),
    path(
        "fee-waivers",
        by_method(get=api.FeeWaiverListApi, post=api.FeeWaiverCreateApi),
        name="fee-waivers",
    ),
    path("fee-quote", api.FeeQuoteApi.as_view(), name="fee-quote"),
]
