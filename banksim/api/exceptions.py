"""The one place where errors become HTTP: RFC 9457 ``application/problem+json``.

Every response body has ``type``, ``title``, ``status``, ``detail``, ``code`` and, for input
problems, ``errors`` (a list of ``{"field", "code", "detail"}``). Unexpected exceptions are
logged with their trace server-side and answered with a bare 500 problem: no trace, no SQL,
no class names ever reach a client.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from banksim.core.errors import DomainError

logger = logging.getLogger("banksim.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://banksim.dev/problems/"

_DRF_CODES: list[tuple[type[drf.APIException], str, str]] = [
    (drf.NotAuthenticated, "auth.not_authenticated", "Authentication required"),
    (drf.AuthenticationFailed, "auth.failed", "Authentication failed"),
    (drf.PermissionDenied, "auth.forbidden", "Forbidden"),
    (drf.NotFound, "not_found", "Not found"),
    (drf.MethodNotAllowed, "request.method_not_allowed", "Method not allowed"),
    (drf.NotAcceptable, "request.not_acceptable", "Not acceptable"),
    (drf.UnsupportedMediaType, "request.unsupported_media_type", "Unsupported media type"),
    (drf.Throttled, "request.throttled", "Too many requests"),
    (drf.ParseError, "request.malformed", "Malformed request"),
    (drf.ValidationError, "validation_error", "Invalid input"),
]


def problem(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested ValidationError detail into a flat list of field errors."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                field = prefix or ""
            out.extend(_flatten(value, field))
    elif isinstance(detail, list):
        for i, item in enumerate(detail):
            if isinstance(item, dict | list) and not isinstance(item, drf.ErrorDetail):
                out.extend(_flatten(item, f"{prefix}[{i}]" if prefix else f"[{i}]"))
            else:
                out.extend(_flatten(item, prefix))
    else:
        code = getattr(detail, "code", None) or "invalid"
        out.append({"field": prefix, "code": str(code), "detail": str(detail)})
    return out


def _domain_errors(exc: DomainError) -> list[dict[str, str]]:
    return [
        {"field": field, "code": exc.code, "detail": message}
        for field, messages in exc.errors.items()
        for message in messages
    ]


def problem_for(exc: BaseException) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (body, headers) for any exception."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        return (
            problem(
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                errors=_domain_errors(exc),
                extra=exc.extra,
            ),
            headers,
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.APIException):
        code, title = "error", "Request failed"
        for cls, c, t in _DRF_CODES:
            if isinstance(exc, cls):
                code, title = c, t
                break
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        if isinstance(exc, drf.ValidationError):
            errors = _flatten(exc.detail)
            detail = "; ".join(f"{e['field'] or 'body'}: {e['detail']}" for e in errors[:5])
            return (
                problem(status=400, code=code, title=title, detail=detail or title, errors=errors),
                headers,
            )
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(status=exc.status_code, code=code, title=title, detail=str(detail)), headers
    logger.exception("unhandled error", exc_info=exc)
    return (
        problem(
            status=500,
            code="server_error",
            title="Internal server error",
            detail="The request could not be completed; nothing was changed.",
        ),
        headers,
    )


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    body, headers = problem_for(exc)
    response = Response(body, status=body["status"], headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _json_problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem(status=status, code=code, title=title, detail=detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_problem(404, "not_found", "Not found", "No such resource.")


def handler500(request: HttpRequest) -> JsonResponse:
    return _json_problem(
        500, "server_error", "Internal server error", "The request could not be completed."
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_problem(400, "request.malformed", "Bad request", "The request is malformed.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_problem(403, "auth.forbidden", "Forbidden", "Forbidden.")
