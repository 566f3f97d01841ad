"""Routes of the EOD API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from eod import api

urlpatterns: list[URLPattern] = [
    path("eod/runs", api.EodRunStartApi.as_view(), name="eod-runs"),
    path("eod/runs/<str:business_date>", api.EodRunDetailApi.as_view(), name="eod-run"),
]
