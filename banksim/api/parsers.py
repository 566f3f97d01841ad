"""A JSON parser that refuses what a bank must never guess at.

Floats are refused outright (money and rates travel as strings), as are NaN/Infinity,
duplicate keys and NUL characters anywhere in the document.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class FloatNotAllowed(ParseError):
    default_detail = (
        "JSON numbers with a fraction or exponent are not accepted: send amounts and rates "
        'as strings, e.g. "100.50".'
    )
    default_code = "float_not_allowed"


def _refuse_float(text: str) -> Any:
    raise FloatNotAllowed()


def _refuse_constant(text: str) -> Any:
    raise ParseError(f"{text} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ParseError(f"duplicate key {key[:40]!r} in JSON object")
        out[key] = value
    return out


def _refuse_nul(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("NUL characters are not allowed in strings")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_nul(k)
            _refuse_nul(v)
    elif isinstance(value, list):
        for v in value:
            _refuse_nul(v)


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("request body is not valid UTF-8") from exc
        if not text.strip():
            return {}
        try:
            data = json.loads(
                text,
                parse_float=_refuse_float,
                parse_constant=_refuse_constant,
                object_pairs_hook=_no_duplicates,
            )
        except ParseError:
            raise
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {exc.msg} at position {exc.pos}") from exc
        _refuse_nul(data)
        return data
