"""OpenAPI pieces shared by every API: the problem+json body and its standard responses.

Views describe their errors with ``problems(400, 404, ...)``; each status gets the
``Problem`` component under ``application/problem+json``, which is what
``banksim.api.exceptions`` actually sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from banksim.api.exceptions import PROBLEM_CONTENT_TYPE


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path of the offending field; '' for the body.")
    code = serializers.CharField(help_text="Stable machine-readable reason, e.g. max_length.")
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every error response of this API."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable error code, listed in docs/api-errors.md.")
    errors = FieldErrorSerializer(many=True, required=False)

    class Meta:
        ref_name = "Problem"


PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON (`request.malformed`), invalid fields (`validation_error`) or a "
    "domain input error.",
    401: "No or bad credentials (`auth.not_authenticated`, `auth.failed`).",
    403: "Authenticated, but the role may not do this (`auth.forbidden`).",
    404: "No such object (`customer.not_found`, `account.not_found`, ...).",
    409: "Conflicts with existing data (e.g. `customer.duplicate_national_id`).",
    422: "A business rule refuses the request (e.g. `customer.kyc_not_verified`).",
}


def problems(*statuses: int) -> dict[Any, OpenApiResponse]:
    """Responses for ``@extend_schema(responses={200: X, **problems(400, 404)})``.

    401 and 403 are always included: every endpoint needs a bank role.
    """
    wanted = sorted({401, 403, *statuses})
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer, description=PROBLEM_DESCRIPTIONS.get(status, "Problem")
        )
        for status in wanted
    }


def expand_method_routes(
    endpoints: list[tuple[str, str, str, Callable[..., Any]]],
) -> list[tuple[str, str, str, Callable[..., Any]]]:
    """drf-spectacular preprocessing hook: document each ``by_method`` operation's own view."""
    expanded = []
    for path, path_regex, method, callback in endpoints:
        operations = getattr(getattr(callback, "cls", None), "operations", None)
        if operations and method in operations:
            callback = operations[method]
        expanded.append((path, path_regex, method, callback))
    return expanded
