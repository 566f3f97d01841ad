"""The transactional outbox: events written in the transaction of the change they announce.

Design overview (docs/events.md): a service that changes something others care about calls
``outbox_enqueue`` (or, on the posting path, hands the event to the ``ledger_post`` SQL
function), which inserts one ``OutboxEvent`` row in the *same* database transaction. So an
event exists if and only if its change committed. Drainers (Celery tasks or ``manage.py
outbox_drain``) then publish pending rows and mark them published after the broker confirmed
them: delivery is at least once, and consumers de-duplicate by ``event_id``.

Order: every event belongs to an *aggregate* (a customer, an account, a transaction, a
calendar's end of day) and carries that aggregate's gap-free ``sequence``. Aggregates are
hashed onto a fixed number of *lanes*; a drainer claims whole lanes with ``FOR UPDATE SKIP
LOCKED`` and publishes a lane's events in id order, so two drainers never publish events of
one aggregate concurrently, and retries back off per lane (the unit that must not overtake
itself). An event that keeps failing is parked as *dead*; the later events of its aggregate
wait behind it until it is re-driven.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

# Fixed at migration time: the SQL function ``outbox_lane_of`` hashes into this many lanes,
# and the lane rows are created by a migration. Changing it needs a drained outbox.
LANE_COUNT = 16


class OutboxEvent(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PUBLISHED = "published", "Published"
        DEAD = "dead", "Dead (parked after too many failed attempts)"

    # The envelope's ``id``: what consumers de-duplicate on; a re-drive keeps it.
    event_id = models.UUIDField(editable=False)
    type = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=64)
    # ``sequence`` (>= 1) and ``status`` (the choices) are of the domain types
    # ``outbox_sequence`` and ``outbox_status`` (migration 0005): a domain's check is planned
    # once per session, a table CHECK on every INSERT. An AlterField here would drop the domain.
    sequence = models.BigIntegerField()
    time = models.DateTimeField(help_text="when the change happened (the service's now)")
    business_date = models.DateField(null=True, blank=True)
    data = models.JSONField()
    lane = models.SmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.SmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Database clock at insert, the last statement of the change's transaction: with
    # ``published_at`` (database clock at the confirm) it gives the commit-to-publish lag.
    # A published row has one: the trigger outbox_event_published_has_time (migration 0006)
    # refuses an UPDATE to published without it; rows are inserted pending.
    enqueued_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # What drainers scan: a lane's pending rows in id order. Published rows leave it.
            models.Index(
                fields=["lane", "id"], name="outbox_pending_by_lane", condition=Q(status="pending")
            ),
            # Parked rows: the admin's list, and the check that holds an aggregate's later
            # events behind a dead one. Tiny, normally empty.
            models.Index(
                fields=["aggregate_type", "aggregate_id", "id"],
                name="outbox_dead_by_aggregate",
                condition=Q(status="dead"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_type}/{self.aggregate_id}#{self.sequence}"


class OutboxAggregate(models.Model):
    """The last sequence number handed out per aggregate (not used for transactions).

    A transaction's events have a fixed order (posted or entered = 1, approved or rejected =
    2, reversed = 2 or 3), so the posting path needs no counter row per transaction.
    """

    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=64)
    last_sequence = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id"], name="outbox_aggregate_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.aggregate_type}/{self.aggregate_id} at {self.last_sequence}"


class OutboxLane(models.Model):
    """One lane of ordered delivery: the row a drainer locks, and the lane's retry backoff."""

    id = models.SmallIntegerField(primary_key=True)
    # Consecutive failed batches; the backoff grows with it and a success resets it.
    failures = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Round robin: the least recently drained lanes are claimed first.
    drained_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"lane {self.id}"
