"""The auditor's read API: the audit log, filtered, and the history of business objects.

Auditors and supervisors may read both; tellers may not read the audit log or history (it
shows every colleague's actions). Nothing here writes: there is no API that changes the log.
Reading is itself audited, like every request.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors
from audit.models import AuditLog
from banksim.api.fields import TextField
from banksim.api.pagination import PageInputSerializer, page_of, page_serializer
from banksim.api.permissions import AUDITOR, SUPERVISOR, roles
from banksim.api.schema import problems

TAG = ["audit"]
AUDIT_READERS = (AUDITOR, SUPERVISOR)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_OBJECT = re.compile(r"([a-z_]{1,40})(:([A-Za-z0-9._-]{1,64}))?", re.ASCII)


@extend_schema_field(OpenApiTypes.STR)
class InstantField(serializers.Field):
    """``YYYY-MM-DD`` (a UTC day) or an ISO 8601 timestamp with its offset.

    Returns ``(start, end)`` of the instant or day, so ``from`` takes the start and ``to``
    the end: ``from=2026-11-30&to=2026-11-30`` is the whole day.
    """

    default_error_messages = {
        "invalid": "a date YYYY-MM-DD or a timestamp like 2026-11-30T09:00:00Z",
    }

    def to_internal_value(self, data: Any) -> tuple[datetime, datetime]:
        if isinstance(data, str) and _DATE.fullmatch(data):
            try:
                day = date.fromisoformat(data)
            except ValueError:
                self.fail("invalid")
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start, start + timedelta(days=1)
        if isinstance(data, str) and _TIMESTAMP.fullmatch(data):
            try:
                instant = datetime.fromisoformat(data.replace("Z", "+00:00"))
            except ValueError:
                self.fail("invalid")
            return instant, instant
        self.fail("invalid")
        raise AssertionError("unreachable")  # pragma: no cover - fail() always raises

    def to_representation(self, value: Any) -> Any:  # pragma: no cover - input only
        return value


class ObjectFilterField(TextField):
    """``type`` or ``type:id``, e.g. ``account`` or ``account:000100000181``."""

    default_error_messages = {"invalid_format": "an object type, or type:id"}

    def to_internal_value(self, data: Any) -> tuple[str, str]:
        value = super().to_internal_value(data)
        match = _OBJECT.fullmatch(value)
        if match is None:
            self.fail("invalid_format")
        return match.group(1), match.group(3) or ""


class AuditLogOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="request (an API/admin call) or decision.")
    channel = serializers.CharField(help_text="api, admin, batch or direct.")
    actor = serializers.CharField(help_text='Username, "system:<job>", or "" for anonymous.')
    role = serializers.CharField()
    action = serializers.CharField(help_text="'METHOD /path' or a decision like transaction.posted")
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    request_id = serializers.CharField()
    outcome = serializers.CharField(help_text="success, refused (4xx) or error (5xx).")
    status_code = serializers.IntegerField(allow_null=True, help_text="Requests only.")
    error_code = serializers.CharField(help_text="The problem code of a refusal.")
    source_ip = serializers.CharField()
    details = serializers.JSONField()
    chain_seq = serializers.IntegerField(allow_null=True, help_text="null until sealed.")
    row_hash = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "AuditLogEntry"


class AuditLogListApi(APIView):
    permission_classes = [roles(read=AUDIT_READERS)]

    class FilterSerializer(PageInputSerializer):
        actor = TextField(max_length=150, required=False)
        action = TextField(
            max_length=200,
            required=False,
            help_text="Exact, or a prefix ending in '*' (transaction.*, POST /api/v1/*).",
        )
        object = ObjectFilterField(max_length=110, required=False)
        outcome = serializers.ChoiceField(choices=AuditLog.Outcome.choices, required=False)
        code = TextField(max_length=100, required=False, help_text="A refusal's problem code.")
        kind = serializers.ChoiceField(choices=AuditLog.Kind.choices, required=False)
        request_id = TextField(max_length=64, required=False)

        class Meta:
            ref_name = "AuditLogFilter"

        def get_fields(self) -> dict[str, serializers.Field]:
            # ``from`` is a Python keyword, so the range fields are added by name here.
            fields = super().get_fields()
            fields["from"] = InstantField(required=False, help_text="From this date or time.")
            fields["to"] = InstantField(required=False, help_text="Up to this date or time.")
            return fields

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            start, end = attrs.get("from"), attrs.get("to")
            if start is not None and end is not None and end[1] < start[0]:
                raise serializers.ValidationError(
                    {"to": [serializers.ErrorDetail("must not be before from", code="invalid")]}
                )
            return attrs

    OutputSerializer = page_serializer(AuditLogOutputSerializer, "AuditLogPageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="audit_log_list",
        summary="Search the audit log, newest first (auditors and supervisors)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        object_type, object_id = params.get("object", ("", ""))
        at_from = params["from"][0] if "from" in params else None
        at_to = params["to"] if "to" in params else None

        count, rows = page_of(
            selectors.audit_log_list(
                actor=params.get("actor", ""),
                action=params.get("action", ""),
                object_type=object_type,
                object_id=object_id,
                outcome=params.get("outcome", ""),
                error_code=params.get("code", ""),
                kind=params.get("kind", ""),
                request_id=params.get("request_id", ""),
                at_from=at_from,
                # A timestamp ``to`` is exclusive; a date runs to the end of that day.
                at_before=at_to[1] if at_to is not None else None,
            ),
            limit=params["limit"],
            offset=params["offset"],
        )

        return Response(
            self.OutputSerializer(
                {
                    "count": count,
                    "limit": params["limit"],
                    "offset": params["offset"],
                    "results": rows,
                }
            ).data
        )


class HistoryVersionOutputSerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    at = serializers.DateTimeField()
    type = serializers.CharField(help_text="created, changed or deleted.")
    user = serializers.CharField(allow_null=True, help_text="Who made the change, if known.")
    change_reason = serializers.CharField()
    changes = serializers.JSONField(
        help_text="[{field, old, new}] against the version before (empty for the first)."
    )
    values = serializers.JSONField(help_text="Every field of the object in this version.")

    class Meta:
        ref_name = "HistoryVersion"


MODEL_PARAM = OpenApiParameter(
    "model",
    str,
    OpenApiParameter.PATH,
    enum=sorted(selectors.HISTORY_MODELS),
    description="What kind of object.",
)
OBJECT_ID_PARAM = OpenApiParameter(
    "object_id",
    str,
    OpenApiParameter.PATH,
    description="CIF id (customer), account number (account), product code (product), "
    "otherwise the numeric id.",
)


class HistoryListApi(APIView):
    permission_classes = [roles(read=AUDIT_READERS)]

    class FilterSerializer(PageInputSerializer):
        class Meta:
            ref_name = "HistoryFilter"

    OutputSerializer = page_serializer(HistoryVersionOutputSerializer, "HistoryPageSerializer")

    @extend_schema(
        tags=TAG,
        operation_id="history_list",
        summary="Every recorded version of one object, newest first, with what changed",
        parameters=[MODEL_PARAM, OBJECT_ID_PARAM, FilterSerializer],
        responses={200: OutputSerializer, **problems(400, 404)},
    )
    def get(self, request: Request, model: str, object_id: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data

        count, versions = selectors.history_list(
            model=model, object_key=object_id, limit=params["limit"], offset=params["offset"]
        )

        return Response(
            self.OutputSerializer(
                {
                    "count": count,
                    "limit": params["limit"],
                    "offset": params["offset"],
                    "results": versions,
                }
            ).data
        )
