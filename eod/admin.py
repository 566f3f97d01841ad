"""EOD in the admin: runs with each step's progress, report downloads, and "Start EOD".

"Start EOD" calls ``eod.services.eod_request`` (the same service as the API), which enqueues
the ``eod.run`` task; the page then shows the run's steps filling in.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Calendar
from banksim.api.permissions import SUPERVISOR, user_roles
from banksim.core import clock
from banksim.core.errors import DomainError
from eod import services
from eod.models import EodReport, EodRun, EodStep


class EodStepInline(admin.TabularInline):
    model = EodStep
    extra = 0
    can_delete = False
    fields = ("position", "name", "status", "progress", "attempts", "started_at", "finished_at",
              "summary", "error")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: EodStep) -> str:
        return _progress(obj)


def _progress(step: EodStep) -> str:
    if not step.rows_total:
        return f"{step.rows_done}"
    return f"{step.rows_done}/{step.rows_total} ({100 * step.rows_done // step.rows_total}%)"


@admin.register(EodRun)
class EodRunAdmin(admin.ModelAdmin):
    list_display = ("business_date", "calendar", "status", "steps_progress", "started_at",
                    "finished_at")  # fmt: skip
    list_filter = ("status", "calendar")
    date_hierarchy = "business_date"
    readonly_fields = ("calendar", "business_date", "status", "started_at", "finished_at",
                       "error", "report_links")  # fmt: skip
    inlines = [EodStepInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_start_permission(self, request: HttpRequest) -> bool:
        # The API's rule: only supervisors start end of day.
        return bool(request.user.is_superuser or SUPERVISOR in user_roles(request.user))

    @admin.display(description="steps")
    def steps_progress(self, obj: EodRun) -> str:
        steps = list(obj.steps.order_by("position"))
        done = sum(1 for step in steps if step.status == EodStep.Status.DONE)
        current = next((s for s in steps if s.status != EodStep.Status.DONE), None)
        tail = f"; {current.name} {current.status} {_progress(current)}" if current else ""
        return f"{done}/{len(steps)} done{tail}"

    @admin.display(description="reports (CSV)")
    def report_links(self, obj: EodRun) -> str:
        kinds = EodReport.objects.filter(run=obj).values_list("kind", flat=True)
        if not kinds:
            return "written when the day closes"
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            ((reverse("admin:eod_eodrun_report", args=[obj.pk, kind]), kind) for kind in kinds),
        )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("start/", self.admin_site.admin_view(self.start_view), name="eod_eodrun_start"),
            path(
                "<int:run_id>/report/<str:kind>.csv",
                self.admin_site.admin_view(self.report_view),
                name="eod_eodrun_report",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "can_start_eod": self.has_start_permission(request)}
        return super().changelist_view(request, extra_context=extra)

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_start_permission(request):
            return HttpResponse("Only supervisors start end of day.", status=403)
        calendar = get_object_or_404(Calendar, code="MAIN")
        if request.method == "POST":
            # The admin has no problem+json handler: a refusal becomes a message.
            try:
                run = services.eod_request(calendar_code=calendar.code, now=clock.now())
            except DomainError as exc:
                self.message_user(request, f"EOD not started: {exc.detail}", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:eod_eodrun_changelist"))
            self.message_user(request, f"EOD of {run.business_date} requested.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:eod_eodrun_change", args=[run.pk]))
        return TemplateResponse(
            request,
            "admin/eod/eodrun/start.html",
            {
                **self.admin_site.each_context(request),
                "title": "Start EOD",
                "opts": self.model._meta,
                "calendar": calendar.code,
                "business_date": calendar.business_date,
                "day_state": calendar.get_day_state_display(),
            },
        )

    def report_view(self, request: HttpRequest, run_id: int, kind: str) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        report = get_object_or_404(EodReport, run_id=run_id, kind=kind)
        response = HttpResponse(report.content, content_type="text/csv; charset=utf-8")
        filename = f"eod-{report.run.business_date.isoformat()}-{kind}.csv"
        response["Content-Disposition"] = format_html('attachment; filename="{}"', filename)
        return response
