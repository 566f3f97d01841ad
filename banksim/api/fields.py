"""Serializer building blocks shared by every API: strict input, amounts as strings.

DRF's stock fields are lenient where a bank must not be: ``CharField`` turns ``123`` into
``"123"``, ``IntegerField`` reads ``"1_000"`` and Arabic-Indic digits, ``DateField`` takes
``"20261130"`` and week dates. The fields here accept one spelling only.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from banksim.core.money import AMOUNT_PATTERN, CURRENCY_EXPONENTS

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DIGITS = re.compile(r"0|[1-9][0-9]{0,8}", re.ASCII)


class StrictInputSerializer(serializers.Serializer):
    """Refuse unknown and server-owned fields instead of silently dropping them."""

    server_owned: ClassVar[frozenset[str]] = frozenset(
        {
            "id",
            "status",
            "balance",
            "ledger_balance",
            "available_balance",
            "held_balance",
            "created_at",
            "updated_at",
            "cif_id",
            "account_number",
            "posted_at",
            "transaction_id",
        }
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["expected a JSON object"]}, code="invalid"
            )
        unknown = set(data) - set(self.fields)
        if unknown:
            errors: dict[str, list[serializers.ErrorDetail]] = {}
            for key in sorted(unknown, key=str):
                if key in self.server_owned:
                    errors[key] = [
                        serializers.ErrorDetail("server-owned field cannot be set", "server_owned")
                    ]
                else:
                    errors[str(key)[:64]] = [
                        serializers.ErrorDetail("unknown field", "unknown_field")
                    ]
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class CurrencyField(serializers.CharField):
    default_error_messages = {"unknown_currency": "{value!r} is not a supported ISO 4217 code."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value not in CURRENCY_EXPONENTS:
            self.fail("unknown_currency", value=value[:8])
        return value


@extend_schema_field({"type": "string", "pattern": AMOUNT_PATTERN.pattern, "example": "100.50"})
class AmountField(serializers.Field):
    """An amount on the wire: a string like ``"100.50"``; never a JSON number.

    Returns the validated string; the view or a ``validate`` method pairs it with a currency
    through ``Money.parse`` (which also checks the currency's decimal places).
    """

    default_error_messages = {
        "not_string": 'amounts are strings, e.g. "100.50", not JSON numbers',
        "invalid": 'not a plain decimal amount like "100.50"',
        "not_positive": "amount must be greater than zero",
    }

    def __init__(self, *, positive: bool = True, **kwargs: Any) -> None:
        self.positive = positive
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_string")
        if len(data) > 32 or not AMOUNT_PATTERN.fullmatch(data):
            self.fail("invalid")
        if self.positive and (data.startswith("-") or set(data) <= set("0.")):
            self.fail("not_positive")
        return data

    def to_representation(self, value: Any) -> str:
        return str(value)


@extend_schema_field({"type": "string", "example": "100.50"})
class MoneyOutField(serializers.Field):
    """Render a ``Money`` as ``"100.50"``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        return value.to_wire()


class SafeCharField(serializers.CharField):
    """CharField with a length cap by default (no unbounded strings reach the database)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)


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
