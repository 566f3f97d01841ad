"""A read-only window on the audit log for auditors, supervisors and superusers.

Nobody can add, change or delete a row here (the database refuses it anyway); the chain head
is shown so an auditor can note it down.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditChainHead, AuditLog
from banksim.api.permissions import AUDITOR, SUPERVISOR, user_roles


def _may_read(request: HttpRequest) -> bool:
    user = request.user
    return bool(
        user.is_active
        and user.is_staff
        and (user.is_superuser or user_roles(user) & {AUDITOR, SUPERVISOR})
    )


class AuditReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_read(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_read(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(AuditReadOnlyAdmin):
    list_display = (
        "id",
        "at",
        "kind",
        "actor",
        "role",
        "action",
        "object_type",
        "object_id",
        "outcome",
        "status_code",
        "error_code",
        "source_ip",
        "request_id",
        "chain_seq",
    )
    list_filter = ("kind", "outcome", "role", "channel", "object_type", "status_code")
    search_fields = ("=actor", "=request_id", "=object_id", "action", "=error_code")
    date_hierarchy = "at"
    ordering = ("-id",)
    show_full_result_count = False


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(AuditReadOnlyAdmin):
    list_display = ("last_seq", "last_hash", "sealed_at")
