"""Routes of the auditor's read API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from audit import api

urlpatterns: list[URLPattern] = [
    path("audit-log", api.AuditLogListApi.as_view(), name="audit-log"),
    path("history/<str:model>/<str:object_id>", api.HistoryListApi.as_view(), name="history"),
]
