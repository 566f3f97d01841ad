"""Input fields and paging shared by the CIF/accounts views.

DRF's stock fields are lenient where a bank must not be: ``CharField`` turns ``123`` into
``"123"``, ``IntegerField`` reads ``"1_000"`` and Arabic-Indic digits, ``DateField`` takes
``"20261130"`` and week dates. These accept one spelling only.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from banksim.api.fields import SafeCharField, StrictInputSerializer

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DIGITS = re.compile(r"0|[1-9][0-9]{0,8}", re.ASCII)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class TextField(SafeCharField):
    """A single line of text: a JSON string, capped, without control characters."""

    default_error_messages = {
        "not_string": "must be a JSON string",
        "control_characters": "control characters are not allowed",
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_string")
        if _CONTROL_CHARS.search(data):
            self.fail("control_characters")
        return super().to_internal_value(data)


class CodeField(TextField):
    """An identifier with a fixed ASCII shape (CIF id, SOL code, product code...)."""

    default_error_messages = {"invalid_format": "not a valid {name}"}

    def __init__(self, *, pattern: str, name: str, **kwargs: Any) -> None:
        self.pattern = re.compile(pattern, re.ASCII)
        self.name = name
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if self.max_length is not None and len(value) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if not self.pattern.fullmatch(value):
            self.fail("invalid_format", name=self.name)
        return value


def cif_id_field(**kwargs: Any) -> CodeField:
    return CodeField(pattern=r"[A-Z][0-9]{9}", name="CIF id", max_length=10, **kwargs)


def sol_code_field(**kwargs: Any) -> CodeField:
    return CodeField(pattern=r"[0-9]{4}", name="SOL code (4 digits)", max_length=4, **kwargs)


def product_code_field(**kwargs: Any) -> CodeField:
    return CodeField(pattern=r"[A-Z0-9][A-Z0-9-]*", name="product code", max_length=12, **kwargs)


class IsoDateField(serializers.DateField):
    """A calendar date spelled exactly ``YYYY-MM-DD``."""

    default_error_messages = {"invalid": "dates are strings spelled YYYY-MM-DD"}

    def to_internal_value(self, value: Any) -> date:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            self.fail("invalid")
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail("invalid")
        raise AssertionError("unreachable")  # pragma: no cover - fail() always raises


class QueryIntField(serializers.IntegerField):
    """A non-negative integer query parameter written in plain ASCII digits."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not _DIGITS.fullmatch(data):
            self.fail("invalid")
        return int(data)


class PageInputSerializer(StrictInputSerializer):
    """``limit`` (1-100) and ``offset`` query parameters; list filters extend this."""

    limit = QueryIntField(
        required=False, default=DEFAULT_PAGE_SIZE, min_value=1, max_value=MAX_PAGE_SIZE
    )
    offset = QueryIntField(required=False, default=0, min_value=0, max_value=10_000_000)


def page_of(queryset: QuerySet[Any], *, limit: int, offset: int) -> tuple[int, list[Any]]:
    """Return (total count, the rows of one page)."""
    return queryset.count(), list(queryset[offset : offset + limit])


def page_serializer(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """Build the ``{count, limit, offset, results}`` envelope serializer for ``item``."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
            "results": item(many=True),
            "__module__": item.__module__,
        },
    )
