"""Reads of the outbox: backlog, dead events, lag figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from outbox.models import OutboxEvent


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int
    dead: int
    oldest_pending_enqueued_at: datetime | None


def outbox_backlog() -> OutboxBacklog:
    """How many events wait, how many are parked, and since when the oldest waits."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'),"
            "       count(*) FILTER (WHERE status = 'dead'),"
            "       min(enqueued_at) FILTER (WHERE status = 'pending')"
            "  FROM outbox_outboxevent WHERE status IN ('pending', 'dead')"
        )
        pending, dead, oldest = cursor.fetchone()
    return OutboxBacklog(pending=pending, dead=dead, oldest_pending_enqueued_at=oldest)


def dead_events() -> QuerySet[OutboxEvent]:
    return OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).order_by("id")


def events_of(*, aggregate_type: str, aggregate_id: str) -> QuerySet[OutboxEvent]:
    """An aggregate's events still in the outbox (published ones until they are purged)."""
    return OutboxEvent.objects.filter(
        aggregate_type=aggregate_type, aggregate_id=aggregate_id
    ).order_by("sequence")


def publish_lag_ms(*, since_id: int = 0) -> list[float]:
    """Commit-to-confirm lag (ms, database clock) of events published after row ``since_id``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM published_at - enqueued_at) * 1000"
            "  FROM outbox_outboxevent WHERE id > %s AND status = 'published'",
            [since_id],
        )
        return sorted(float(row[0]) for row in cursor.fetchall())
