"""Limit/offset paging for list views: the query parameters, the slice and the envelope.

Every list endpoint answers ``{count, limit, offset, results}``; the envelope serializer is
built per item type so each list gets its own named component in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from banksim.api.fields import QueryIntField, StrictInputSerializer

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


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
