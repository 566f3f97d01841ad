"""One audit row per API or admin request, and the request context for the decisions inside.

The middleware gives every audited request a request id (the client's ``X-Request-ID`` if it
is a sane token, else a new one; echoed in the response), opens the audit context the
services read, and after the response writes the request's row in its own short transaction:
who, role, method and path, the object named by the URL (or by the request's first decision),
status, the problem ``code`` of a refusal, source IP and time.

It sits right after ``SecurityMiddleware`` so the status it records is the one the client
gets; Django turns exceptions into responses inside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from audit.context import REQUEST_ID_HEADER, Channel, request_context, request_id_from
from audit.services import audit_request_record

logger = logging.getLogger("banksim.audit")

PROBLEM_CONTENT_TYPE = "application/problem+json"
# URL keyword -> object type. A ``rule_id`` is a fee or a limit rule: the route name decides.
_OBJECT_KWARGS = {
    "cif_id": "customer",
    "account_number": "account",
    "txn_id": "transaction",
    "hold_id": "hold",
}
_RULE_ROUTES = {"fee-rule": "fee_rule", "limit-rule": "limit_rule"}


def source_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the entry of ``X-Forwarded-For`` written by the
    outermost of ``AUDIT_TRUSTED_PROXIES`` proxies (a client can forge everything before it).
    """
    proxies = settings.AUDIT_TRUSTED_PROXIES
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if proxies <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [p for p in forwarded if p]
    return forwarded[-proxies] if len(forwarded) >= proxies else remote


def problem_code(response: HttpResponseBase) -> str:
    """The ``code`` of a problem+json response ("" for anything else)."""
    if response.status_code < 400:
        return ""
    data = getattr(response, "data", None)  # a DRF Response keeps what it rendered
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return data["code"]
    content_type = response.get("Content-Type", "") or ""
    if content_type.startswith(PROBLEM_CONTENT_TYPE) and not response.streaming:
        try:
            body = json.loads(response.content)  # type: ignore[attr-defined]
        except ValueError:
            return ""
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return body["code"]
    return ""


def url_object(request: HttpRequest) -> tuple[str, str]:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "", ""
    kwargs = match.kwargs
    if "model" in kwargs and "object_id" in kwargs:  # the history endpoint
        return str(kwargs["model"]), str(kwargs["object_id"])
    if "rule_id" in kwargs and match.url_name in _RULE_ROUTES:
        return _RULE_ROUTES[match.url_name], str(kwargs["rule_id"])
    for name, object_type in _OBJECT_KWARGS.items():
        if name in kwargs:
            return object_type, str(kwargs[name])
    return "", ""


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.prefixes = tuple(settings.AUDIT_REQUEST_PATH_PREFIXES)
        self.admin_prefix = "/admin/"

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(self.prefixes):
            return self.get_response(request)
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        channel = Channel.ADMIN if request.path.startswith(self.admin_prefix) else Channel.API
        with request_context(
            request, request_id=request_id, source_ip=source_ip(request), channel=channel
        ) as context:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            object_type, object_id = url_object(request)
            if not object_type and context.first_object and response.status_code < 400:
                object_type, object_id = context.first_object
            details: dict[str, Any] = {}
            if response.get("Idempotent-Replayed") == "true":
                details["replayed"] = True
            try:
                audit_request_record(
                    context=context,
                    action=f"{request.method} {request.path}",
                    object_type=object_type,
                    object_id=object_id,
                    status_code=response.status_code,
                    error_code=problem_code(response),
                    details=details,
                )
            except Exception:
                # The request's own work has committed (or not) already; failing the response
                # now would not undo it. The failure is logged loudly for operations.
                logger.exception("audit: could not record %s %s", request.method, request.path)
        return response
