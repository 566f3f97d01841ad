"""The end-of-day API: a supervisor starts EOD; every role can watch its progress."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from banksim.api.fields import IsoDateField, StrictInputSerializer
from banksim.api.permissions import ALL_ROLES, SUPERVISORS, roles
from banksim.api.schema import problems
from banksim.core import clock
from eod import selectors, services
from eod.models import EodRun

TAG = ["eod"]
BUSINESS_DATE = OpenApiParameter(
    "business_date", str, OpenApiParameter.PATH, description="The business date, YYYY-MM-DD"
)


class StepOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    position = serializers.IntegerField()
    status = serializers.CharField()
    rows_done = serializers.IntegerField()
    rows_total = serializers.IntegerField()
    percent = serializers.SerializerMethodField()
    attempts = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    summary = serializers.JSONField()
    error = serializers.CharField()

    class Meta:
        ref_name = "EodStep"

    def get_percent(self, step: Any) -> int | None:
        if step.status == "done":
            return 100
        return 100 * step.rows_done // step.rows_total if step.rows_total else None


class RunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    calendar = serializers.CharField(source="calendar.code")
    business_date = serializers.DateField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    steps = StepOutputSerializer(many=True)
    reports = serializers.ListField(child=serializers.CharField())

    class Meta:
        ref_name = "EodRun"


def _rendered(run: EodRun) -> dict[str, Any]:
    data = {
        "id": run.pk,
        "calendar": run.calendar,
        "business_date": run.business_date,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "steps": sorted(run.steps.all(), key=lambda step: step.position),
        "reports": selectors.eod_report_kinds(run=run),
    }
    return RunOutputSerializer(data).data  # type: ignore[return-value]


class EodRunStartApi(APIView):
    permission_classes = [roles(write=SUPERVISORS)]

    class InputSerializer(StrictInputSerializer):
        calendar = serializers.RegexField(r"^[A-Z0-9_]{1,16}\Z", required=False, default="MAIN")

        class Meta:
            ref_name = "EodRunStart"

    @extend_schema(
        tags=TAG,
        operation_id="eod_run_start",
        summary="Start (or resume) end of day for the current business date (supervisor)",
        description=(
            "Records the run and enqueues the `eod.run` Celery task on the `eod` queue; poll "
            "`GET /api/v1/eod/runs/{business_date}` for progress. With "
            "CELERY_TASK_ALWAYS_EAGER the task runs before this answers."
        ),
        request=InputSerializer,
        responses={
            202: OpenApiResponse(RunOutputSerializer, description="Accepted."),
            **problems(400, 404, 409),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        run = services.eod_request(
            calendar_code=serializer.validated_data["calendar"], now=clock.now()
        )

        run = selectors.eod_run_get(
            business_date=run.business_date, calendar_code=run.calendar.code
        )
        return Response(
            _rendered(run),
            status=202,
            headers={"Location": f"/api/v1/eod/runs/{run.business_date.isoformat()}"},
        )


class EodRunDetailApi(APIView):
    permission_classes = [roles(read=ALL_ROLES)]

    @extend_schema(
        tags=TAG,
        operation_id="eod_run_detail",
        summary="An EOD run with every step's status and progress",
        parameters=[BUSINESS_DATE],
        responses={200: RunOutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request, business_date: str) -> Response:
        day = IsoDateField().run_validation(business_date)

        run = selectors.eod_run_get(business_date=day)

        return Response(_rendered(run))
