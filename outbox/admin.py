"""Admin for the outbox: every event is visible, dead (parked) ones can be re-driven.

Nothing here edits an event: the only write is the re-drive action, which calls
``outbox_redrive`` for the selected dead events (supervisors and superusers). Lanes show
which part of the outbox is backing off and why.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdminMixin
from banksim.api.permissions import SUPERVISOR, user_roles
from banksim.core import clock
from outbox import services
from outbox.models import OutboxEvent, OutboxLane


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "type",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "status",
        "attempts",
        "short_error",
        "enqueued_at",
        "published_at",
    )
    list_filter = ("status", "type", "aggregate_type", "lane")
    search_fields = ("=aggregate_id", "=event_id")
    ordering = ("-id",)
    actions = ["redrive"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    show_full_result_count = False

    @admin.display(description="last error")
    def short_error(self, obj: OutboxEvent) -> str:
        return obj.last_error[:80]

    def has_redrive_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser or SUPERVISOR in user_roles(request.user))

    @admin.action(description="Re-drive selected dead events", permissions=["redrive"])
    def redrive(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        revived = services.outbox_redrive(
            event_ids=queryset.values_list("pk", flat=True), now=clock.now()
        )
        self.message_user(
            request,
            f"{revived} dead event(s) put back in line; events that were not dead were left.",
            messages.SUCCESS if revived else messages.WARNING,
        )


@admin.register(OutboxLane)
class OutboxLaneAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "failures", "next_attempt_at", "drained_at", "last_error")
    ordering = ("id",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in OutboxLane._meta.fields]
