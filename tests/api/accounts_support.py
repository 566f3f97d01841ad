"""Helpers for the CIF/accounts API tests: problem+json assertions and request payloads."""

from __future__ import annotations

import itertools
from typing import Any

PROBLEM = "application/problem+json"

_national_ids = itertools.count(1)


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> dict:
    """Assert an RFC 9457 answer with ``status`` and ``code`` (and an error on ``field``)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"].endswith(code)
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    text = response.content.decode()
    assert "Traceback" not in text and 'File "' not in text
    if field is not None:
        assert field in {error["field"] for error in body.get("errors", [])}, body
    return body


def customer_payload(**overrides: Any) -> dict[str, Any]:
    """A valid individual customer for POST /customers, with a national id of its own."""
    payload: dict[str, Any] = {
        "customer_type": "individual",
        "first_name": "Amina",
        "last_name": "Okafor",
        "birth_date": "1990-04-12",
        "national_id_type": "national_id",
        "national_id": f"API{next(_national_ids):08d}",
        "email": "amina@example.com",
        "phone": "+234 801 555 0101",
        "address": "12 Marina Road, Lagos",
        "home_branch": "0001",
    }
    payload.update(overrides)
    return payload
