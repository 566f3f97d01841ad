"""Writes of the outbox: enqueue an event, and drain (claim, publish, mark, park), re-drive, purge.

Design overview (docs/events.md, "Delivery"):

* ``outbox_enqueue`` runs in the caller's transaction: one statement (the ``outbox_enqueue``
  SQL function) and an on-commit nudge. The posting path skips even that statement: its
  event is written by ``ledger_post`` itself (``ledger.posting.journal_post(event=...)``).
* ``outbox_publish_batch`` is one drain step in one short transaction: claim up to
  ``lanes_per_claim`` lanes with ``FOR UPDATE SKIP LOCKED`` (so concurrent drainers take
  different lanes and never the same aggregate), read their oldest pending events in id
  order, publish them and wait for the broker's confirms, then mark the confirmed ones
  published and commit. A drainer that dies before the commit leaves nothing marked: its
  lanes unlock when PostgreSQL drops the session, and the next drainer publishes the same
  events again (at-least-once; consumers de-duplicate by event id).
* A failed batch charges each unconfirmed event one attempt, parks the ones that reached
  ``max_attempts`` as dead, and backs the claimed lanes off exponentially with jitter.
  ``outbox_redrive`` puts dead events back. Until then the later events of a dead event's
  aggregate are held back, so per-aggregate order survives a parked event.
* ``outbox_drain`` loops over batches while there is work, behind a circuit breaker, inside
  one of ``slots`` drainer slots (session advisory locks), lingers briefly when idle, and is
  what the Celery task and ``manage.py outbox_drain`` run.
* ``outbox_purge`` deletes published events older than the retention period, in chunks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from outbox.breaker import CircuitBreaker
from outbox.events import SCHEMA_VERSION, Event, routing_key
from outbox.models import LANE_COUNT
from outbox.nudge import nudge_on_commit
from outbox.publishers import OutgoingEvent, Publisher, PublishError

# Class id of the session advisory locks that are drainer slots (objid = slot number); any
# other user of two-key advisory locks must pick another class.
_SLOT_LOCK_CLASS = 0x0B0C


@dataclass(frozen=True)
class DrainConfig:
    """How a drainer works; ``from_settings`` reads the ``OUTBOX_*`` settings."""

    batch_size: int = 500
    lanes_per_claim: int = 8
    max_attempts: int = 10
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    # Idle time after which a drain run gives its slot up (None: never, a foreground loop).
    linger_seconds: float | None = 2.0
    # Pause after a batch that was not full, so the next one is worth a round trip.
    poll_seconds: float = 0.02
    # A drain run ends after this long (a Celery task then hands over to a fresh one).
    max_seconds: float | None = 60.0
    slots: int = 2

    @classmethod
    def from_settings(cls, **overrides: Any) -> DrainConfig:
        config = cls(
            batch_size=settings.OUTBOX_BATCH_SIZE,
            lanes_per_claim=settings.OUTBOX_LANES_PER_CLAIM,
            max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
            backoff_base_seconds=settings.OUTBOX_BACKOFF_BASE_SECONDS,
            backoff_max_seconds=settings.OUTBOX_BACKOFF_MAX_SECONDS,
            linger_seconds=settings.OUTBOX_DRAIN_LINGER_SECONDS,
            poll_seconds=settings.OUTBOX_DRAIN_POLL_SECONDS,
            max_seconds=settings.OUTBOX_DRAIN_MAX_SECONDS,
            slots=settings.OUTBOX_DRAINER_SLOTS,
        )
        return replace(config, **overrides)


# --- enqueue ---------------------------------------------------------------------------------


def outbox_enqueue(*, event: Event) -> int:
    """Write ``event`` to the outbox in the caller's transaction; return the row id.

    One statement. Events of aggregates other than transactions take the next number of the
    aggregate's counter, whose row stays locked until the caller commits: take it after the
    locks that already serialise changes of that aggregate (e.g. the account's balance row).
    """
    assert connection.in_atomic_block, "outbox_enqueue requires the caller's transaction"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT outbox_enqueue(%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [
                event.type,
                event.source,
                event.aggregate_type,
                event.aggregate_id,
                event.sequence,
                event.time,
                event.business_date,
                json.dumps(event.data, cls=DjangoJSONEncoder, separators=(",", ":")),
            ],
        )
        row_id = int(cursor.fetchone()[0])
    nudge_on_commit()
    return row_id


# --- one drain step --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: int
    lane: int
    outgoing: OutgoingEvent


@dataclass
class BatchResult:
    claimed: int = 0
    published: int = 0
    parked: int = 0
    error: str = ""


# An event is ready when it is pending and no dead event of its aggregate comes before it
# (order first: the later events of a parked one wait until it is re-driven). A dead event's
# successors share its lane, so the per-row check runs only in lanes that hold a dead event
# (normally none): elsewhere the first, precomputed test is already true.
_READY = """c.status = 'pending'
   AND (c.lane <> ALL (ARRAY(SELECT DISTINCT d.lane FROM outbox_outboxevent d
                              WHERE d.status = 'dead'))
        OR NOT EXISTS (SELECT 1 FROM outbox_outboxevent d
                        WHERE d.status = 'dead' AND d.aggregate_type = c.aggregate_type
                          AND d.aggregate_id = c.aggregate_id AND d.id < c.id))"""
# A lane is due when it is not backing off and has a pending event. ORDER BY ... LIMIT 1 keeps
# this a plain index scan that stops at the first pending row; such scans also flag the index
# entries of rows published since (dead, not yet vacuumed), so the next look skips them.
_LANE_IS_DUE = """l.next_attempt_at <= %(now)s
   AND EXISTS (SELECT 1 FROM outbox_outboxevent c WHERE c.lane = l.id AND c.status = 'pending'
                ORDER BY c.lane, c.id LIMIT 1)"""

# Lock due lanes, skipping those another drainer holds.
_CLAIM_LANES_SQL = f"""
SELECT l.id
  FROM outbox_outboxlane l
 WHERE {_LANE_IS_DUE}
 ORDER BY l.drained_at, l.id
 LIMIT %(lanes)s
   FOR UPDATE SKIP LOCKED
"""

# Then, in a second statement (its READ COMMITTED snapshot is taken after the lane locks, so
# it sees everything the lanes' previous holder committed; in one statement a lane freed
# just after the snapshot would be locked while its rows still looked pending): the claimed
# lanes' ready events lane after lane, each lane's in id order from its oldest (a prefix of
# the lane, so nothing overtakes within it), ``batch`` at most; the (lane, id) order is the
# pending-by-lane index's, so the scan stops after ``batch`` rows. Only then are their
# envelopes built, in the order docs/events.md shows. The publisher sends these bytes
# unchanged; PostgreSQL renders ``time`` and ``businessdate`` (the connection is in UTC).
_CLAIM_EVENTS_SQL = f"""
SELECT e.id, e.lane, e.event_id::text, e.type,
       coalesce(e.business_date, e.enqueued_at::date)::text,
       json_build_object(
           'specversion', '1.0',
           'id', e.event_id,
           'type', e.type,
           'source', e.source,
           'subject', e.aggregate_type || '/' || e.aggregate_id,
           'time', e.time,
           'datacontenttype', 'application/json',
           'schemaversion', %(schema_version)s,
           'businessdate', e.business_date,
           'sequence', e.sequence,
           'data', e.data)::text
  FROM outbox_outboxevent e
 WHERE e.id = ANY (ARRAY(
        SELECT c.id
          FROM outbox_outboxevent c
         WHERE c.lane = ANY (%(lanes)s::smallint[]) AND {_READY}
         ORDER BY c.lane, c.id
         LIMIT %(batch)s))
 ORDER BY e.lane, e.id
"""

# The marks need not wait for their WAL flush: were they lost in a crash, the events would
# go out again under the same ids, which at-least-once delivery allows. That spares every
# batch a disk flush on the commit.
_MARK_PUBLISHED_SQL = """
WITH published AS (
    UPDATE outbox_outboxevent
       SET status = 'published', published_at = clock_timestamp()
     WHERE id = ANY (%(ids)s) AND status = 'pending'
), lanes AS (
    UPDATE outbox_outboxlane
       SET drained_at = clock_timestamp(), failures = 0, last_error = ''
     WHERE id = ANY (%(lanes)s)
)
SELECT set_config('synchronous_commit', 'off', true)
"""

# Equal jitter: between half and all of base * 2^failures, capped; never sooner than half.
_MARK_FAILED_SQL = """
WITH charged AS (
    UPDATE outbox_outboxevent
       SET attempts = attempts + 1, last_error = %(error)s, last_attempt_at = %(now)s,
           status = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'dead' ELSE 'pending' END
     WHERE id = ANY (%(ids)s) AND status = 'pending'
    RETURNING status
), backoff AS (
    UPDATE outbox_outboxlane
       SET failures = failures + 1, last_error = %(error)s, drained_at = clock_timestamp(),
           next_attempt_at = %(now)s + make_interval(secs =>
               least(%(max_backoff)s, %(base_backoff)s * power(2, least(failures, 30)))
               * (0.5 + random() / 2))
     WHERE id = ANY (%(lanes)s)
)
SELECT count(*) FILTER (WHERE status = 'dead') FROM charged
"""


def outbox_claim(*, now: datetime, batch_size: int, lanes_per_claim: int) -> list[ClaimedEvent]:
    """Lock up to ``lanes_per_claim`` due lanes (skipping locked ones); return their oldest events.

    Requires the caller's transaction, which keeps the lanes until it ends. Events come lane
    after lane; each lane's in id order, a prefix of that lane's ready events.
    """
    assert connection.in_atomic_block, "outbox_claim requires the caller's transaction"
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_LANES_SQL, {"now": now, "lanes": lanes_per_claim})
        lanes = [row[0] for row in cursor.fetchall()]
        if not lanes:
            return []
        cursor.execute(
            _CLAIM_EVENTS_SQL,
            {
                "lanes": lanes,
                "batch": batch_size,
                "schema_version": SCHEMA_VERSION,
            },
        )
        rows = cursor.fetchall()
    return [
        ClaimedEvent(
            id=row[0],
            lane=row[1],
            outgoing=OutgoingEvent(
                event_id=row[2],
                type=row[3],
                routing_key=routing_key(row[3]),
                day=row[4],
                body=row[5].encode(),
            ),
        )
        for row in rows
    ]


def outbox_mark_published(*, claimed: list[ClaimedEvent]) -> None:
    """Mark confirmed events published and reset their lanes' backoff. Caller's transaction."""
    if not claimed:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK_PUBLISHED_SQL,
            {"ids": [c.id for c in claimed], "lanes": sorted({c.lane for c in claimed})},
        )


def outbox_mark_failed(
    *, claimed: list[ClaimedEvent], error: str, now: datetime, config: DrainConfig
) -> int:
    """Charge unconfirmed events an attempt, park those out of attempts; return how many parked.

    Their lanes back off (exponential with jitter). Caller's transaction.
    """
    if not claimed:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK_FAILED_SQL,
            {
                "ids": [c.id for c in claimed],
                "lanes": sorted({c.lane for c in claimed}),
                "error": error[:2000],
                "now": now,
                "max_attempts": config.max_attempts,
                "max_backoff": config.backoff_max_seconds,
                "base_backoff": config.backoff_base_seconds,
            },
        )
        return int(cursor.fetchone()[0])


def outbox_publish_batch(
    *,
    publisher: Publisher,
    config: DrainConfig,
    now: datetime,
    after_publish: Callable[[], None] | None = None,
) -> BatchResult:
    """Claim, publish with confirms, and mark one batch, in one short transaction.

    ``after_publish`` runs between the confirms and the marking (tests widen that window to
    kill a drainer in it).
    """
    with transaction.atomic(durable=True):
        claimed = outbox_claim(
            now=now, batch_size=config.batch_size, lanes_per_claim=config.lanes_per_claim
        )
        result = BatchResult(claimed=len(claimed))
        if not claimed:
            return result
        try:
            publisher.publish([c.outgoing for c in claimed])
            confirmed = len(claimed)
        except PublishError as exc:
            confirmed = exc.confirmed
            result.error = str(exc)
        if after_publish is not None:
            after_publish()
        outbox_mark_published(claimed=claimed[:confirmed])
        result.published = confirmed
        if result.error:
            result.parked = outbox_mark_failed(
                claimed=claimed[confirmed:], error=result.error, now=now, config=config
            )
    return result


# --- the drain loop --------------------------------------------------------------------------


@dataclass
class DrainReport:
    published: int = 0
    batches: int = 0
    failed_batches: int = 0
    parked: int = 0
    # idle | deadline | breaker_open | busy (no free slot) | handed_over | stopped
    stopped: str = ""
    more_work: bool = False
    errors: list[str] = field(default_factory=list)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.published += result.published
        self.parked += result.parked
        if result.error:
            self.failed_batches += 1
            if len(self.errors) < 5:
                self.errors.append(result.error)


def outbox_lanes_ensure() -> None:
    """Create any missing lane row (a truncated table, e.g. between transactional tests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO outbox_outboxlane (id, failures, next_attempt_at, drained_at, last_error)"
            " SELECT g, 0, '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z', ''"
            "   FROM generate_series(0, %s - 1) AS g ON CONFLICT (id) DO NOTHING",
            [LANE_COUNT],
        )


def _take_slot(slots: int) -> int | None:
    with connection.cursor() as cursor:
        for slot in range(slots):
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_SLOT_LOCK_CLASS, slot])
            if cursor.fetchone()[0]:
                return slot
    return None


def _release_slot(slot: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_SLOT_LOCK_CLASS, slot])


def outbox_has_due_work(*, now: datetime) -> bool:
    """Is any event ready to go: pending, in a lane not backing off, not held behind a dead one?"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM outbox_outboxlane l"
            "  JOIN outbox_outboxevent c ON c.lane = l.id"
            f" WHERE l.next_attempt_at <= %(now)s AND {_READY})",
            {"now": now},
        )
        return bool(cursor.fetchone()[0])


def outbox_drain(
    *,
    publisher: Publisher,
    breaker: CircuitBreaker,
    config: DrainConfig,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    after_publish: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DrainReport:
    """Publish batches while there is work; return what happened and why it stopped.

    Runs in one of ``config.slots`` drainer slots, or returns at once (``busy``) when all are
    taken: a nudge that finds every slot busy has nothing to add, the running drainers will
    see its event. Never call it inside a transaction (the slot is a session lock and every
    batch commits on its own).
    """
    assert not connection.in_atomic_block, "outbox_drain commits per batch; no transaction"
    report = DrainReport()
    outbox_lanes_ensure()
    slot = _take_slot(config.slots)
    if slot is None:
        report.stopped = "busy"
        return report
    started = clock()
    idle_since: datetime | None = None
    try:
        while True:
            now = clock()
            if should_stop():
                report.stopped = "stopped"
                break
            if config.max_seconds is not None and (
                (now - started).total_seconds() >= config.max_seconds
            ):
                report.stopped = "deadline"
                report.more_work = outbox_has_due_work(now=now)
                break
            if not breaker.allows():
                if config.max_seconds is not None:
                    report.stopped = "breaker_open"
                    break
                sleep(min(1.0, max(0.05, breaker.seconds_until_retry())))
                continue
            if breaker.probing:
                try:
                    publisher.probe()
                except PublishError as exc:
                    breaker.record_failure()
                    report.errors.append(str(exc))
                    continue
                breaker.record_success()
            result = outbox_publish_batch(
                publisher=publisher, config=config, now=now, after_publish=after_publish
            )
            if result.claimed:
                report.add(result)
            if result.error:
                breaker.record_failure()
                continue
            if result.claimed:
                # Only a confirmed publish says the broker is back; an empty claim (every
                # lane still backing off) says nothing about it.
                breaker.record_success()
                idle_since = None
                if result.claimed < config.batch_size:
                    sleep(config.poll_seconds)
                continue
            idle_since = idle_since or now
            if config.linger_seconds is not None and (
                (now - idle_since).total_seconds() >= config.linger_seconds
            ):
                # Give the slot up, then look once more: an event committed after the last
                # claim, whose nudge found this slot taken, must not wait for the sweep.
                _release_slot(slot)
                slot = None
                if not outbox_has_due_work(now=clock()):
                    report.stopped = "idle"
                    break
                slot = _take_slot(config.slots)
                if slot is None:
                    report.stopped = "handed_over"
                    break
                idle_since = None
                continue
            sleep(config.poll_seconds)
    finally:
        if slot is not None:
            _release_slot(slot)
    return report


# --- dead events and retention ---------------------------------------------------------------


def outbox_redrive(*, event_ids: Iterable[int], now: datetime) -> int:
    """Put parked (dead) events back in line with fresh attempts; return how many.

    Their lanes stop backing off, so a drainer takes them at once; each goes out before the
    events of its aggregate that waited behind it (they have higher ids). Events that are not
    dead are left alone, so re-driving twice is harmless.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(
            "WITH revived AS ("
            "  UPDATE outbox_outboxevent SET status = 'pending', attempts = 0"
            "   WHERE id = ANY (%s) AND status = 'dead' RETURNING lane"
            "), lanes AS ("
            "  UPDATE outbox_outboxlane SET next_attempt_at = %s, failures = 0"
            "   WHERE id IN (SELECT lane FROM revived)"
            ") SELECT count(*) FROM revived",
            [ids, now],
        )
        revived = int(cursor.fetchone()[0])
        if revived:
            nudge_on_commit()
    return revived


def outbox_purge(*, now: datetime, retention: timedelta, chunk: int = 5000) -> int:
    """Delete events published before ``now - retention``; return how many went.

    Chunks of ``chunk`` rows, each its own transaction, oldest first. Pending and dead events
    are never purged. Safe to run at any time and twice.
    """
    cutoff = now - retention
    total = 0
    while True:
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM outbox_outboxevent WHERE id IN ("
                "  SELECT id FROM outbox_outboxevent"
                "   WHERE status = 'published' AND published_at < %s ORDER BY id LIMIT %s)",
                [cutoff, chunk],
            )
            deleted = cursor.rowcount
        total += deleted
        if deleted < chunk:
            return total
