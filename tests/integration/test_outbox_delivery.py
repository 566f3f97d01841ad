"""Delivery to the machine's RabbitMQ: confirms, a broker that goes away, dead events, purge.

Every test gets its own exchange and queue (random names, deleted afterwards). The outage
tests run the real drain loop, which commits per batch, so they use real transactions; the
others publish batch by batch inside the test's transaction.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from outbox import services
from outbox.breaker import CircuitBreaker
from outbox.consumer import ReferenceConsumer, consume_jsonl
from outbox.events import Event, EventType
from outbox.models import OutboxEvent, OutboxLane
from outbox.publishers import AmqpPublisher, JsonLinesPublisher
from outbox.testing import TcpProxy, drain_until_idle, publish_pending, rabbit_stream

UNREACHABLE = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


def announce(count: int, *, subjects: int = 5, prefix: str = "X") -> list[int]:
    """Commit ``count`` events spread over ``subjects`` accounts, one transaction each."""
    ids = []
    for i in range(count):
        with transaction.atomic():
            ids.append(
                services.outbox_enqueue(
                    event=Event(
                        type=EventType.ACCOUNT_FROZEN,
                        aggregate_id=f"{prefix}{i % subjects:04d}",
                        time=timezone.now(),
                        business_date=None,
                        data={"n": i},
                    )
                )
            )
    return ids


def statuses(ids: list[int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in OutboxEvent.objects.filter(pk__in=ids).values_list("status", flat=True):
        found[status] = found.get(status, 0) + 1
    return found


@pytest.fixture
def stream():
    with rabbit_stream(url=settings.OUTBOX_PUBLISH_URL) as made:
        yield made


@pytest.fixture(autouse=True)
def lanes():
    # A transactional test before this one may have truncated the lane rows.
    services.outbox_lanes_ensure()


@pytest.mark.django_db
class TestPublishing:
    def test_events_are_marked_published_only_once_the_broker_confirmed_them(self, stream):
        ids = announce(30)
        published_ids = OutboxEvent.objects.filter(pk__in=ids).values_list("event_id", flat=True)

        report = publish_pending(publisher=stream.publisher(), batch_size=7)

        assert report.published == 30 and report.failed_batches == 0
        assert statuses(ids) == {"published": 30}
        consumer = stream.consume(expect=30)
        assert {e["id"] for e in consumer.applied} == {str(i) for i in published_ids}
        assert consumer.duplicates == 0 and consumer.gaps() == {}

    def test_a_message_carries_the_event_id_type_and_persistence(self, stream):
        announce(1)
        publish_pending(publisher=stream.publisher())

        from outbox.consumer import amqp_connect

        conn = amqp_connect(stream.url)
        try:
            message = conn.channel().basic_get(stream.queue, no_ack=True)
        finally:
            conn.collect()
        body = json.loads(message.body)
        assert message.properties["message_id"] == body["id"]
        assert message.properties["type"] == "banksim.account.frozen"
        assert message.properties["delivery_mode"] == 2
        assert message.delivery_info["routing_key"] == "account.frozen"


@pytest.mark.django_db(transaction=True)
class TestBrokerOutage:
    def test_an_unreachable_broker_loses_nothing_and_the_backlog_drains_when_it_answers(
        self, stream
    ):
        ids = announce(20)
        breaker = CircuitBreaker(threshold=2, cooldown=60.0)

        down = drain_until_idle(
            publisher=AmqpPublisher(url=UNREACHABLE, exchange=stream.exchange),
            breaker=breaker,
            backoff_base_seconds=0.01,
            max_seconds=5.0,
            # Keep trying through the lanes' back-off until the breaker opens (or the
            # deadline passes), instead of stopping at the first moment nothing is due.
            linger_seconds=None,
        )

        assert down.published == 0 and down.failed_batches >= 1
        assert statuses(ids) == {"pending": 20}
        assert (
            "cannot reach"
            in OutboxEvent.objects.filter(pk__in=ids)
            .exclude(last_error="")
            .values_list("last_error", flat=True)[0]
        )
        assert breaker.state == CircuitBreaker.OPEN  # no more attempts until the cool-down
        time.sleep(0.05)  # the lanes' back-off (base 0.01 s) is over

        up = drain_until_idle(publisher=stream.publisher())

        assert up.published == 20 and statuses(ids) == {"published": 20}
        consumer = stream.consume(expect=20)
        assert len(consumer.applied) == 20 and consumer.gaps() == {}

    def test_a_broker_that_goes_away_mid_run_loses_nothing(self, stream):
        target = urlsplit(settings.OUTBOX_PUBLISH_URL)
        proxy = TcpProxy(
            target_host=target.hostname or "127.0.0.1", target_port=target.port or 5672
        )
        port = proxy.start()
        url = f"amqp://{target.username}:{target.password}@127.0.0.1:{port}/"
        breaker = CircuitBreaker(threshold=1, cooldown=0.05, max_cooldown=0.2)
        stop = threading.Event()
        reports = []

        def drainer() -> None:
            try:
                reports.append(
                    services.outbox_drain(
                        publisher=AmqpPublisher(
                            url=url, exchange=stream.exchange, confirm_timeout=2.0
                        ),
                        breaker=breaker,
                        config=services.DrainConfig.from_settings(
                            # A foreground drainer: it waits out an open breaker.
                            linger_seconds=None,
                            max_seconds=None,
                            batch_size=5,
                            poll_seconds=0.01,
                            backoff_base_seconds=0.01,
                            backoff_max_seconds=0.05,
                        ),
                        clock=timezone.now,
                        should_stop=stop.is_set,
                    )
                )
            finally:
                connection.close()

        thread = threading.Thread(target=drainer)
        thread.start()
        try:
            before = announce(40, prefix="A")
            proxy.stop()  # the broker goes down with the drainer running
            during = announce(40, prefix="A")
            time.sleep(0.3)
            assert statuses(during).get("pending", 0) > 0
            proxy.start()  # and comes back
            deadline = time.monotonic() + 15
            while statuses(before + during) != {"published": 80}:
                assert time.monotonic() < deadline, statuses(before + during)
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=30)
            proxy.stop()

        assert reports and reports[0].failed_batches + len(reports[0].errors) >= 1
        consumer = stream.consume(expect=80)
        published = set(
            OutboxEvent.objects.filter(pk__in=before + during).values_list("event_id", flat=True)
        )
        assert {e["id"] for e in consumer.applied} == {str(e) for e in published}
        assert consumer.gaps() == {} and consumer.conflicts == []


@pytest.mark.django_db
class TestDeadEvents:
    def test_an_event_out_of_attempts_is_parked_and_holds_its_aggregate_back(self, stream):
        [first] = announce(1, prefix="D")
        failing = AmqpPublisher(url=UNREACHABLE, exchange=stream.exchange)
        for _ in range(2):
            publish_pending(publisher=failing, max_attempts=2, backoff_base_seconds=0.001)
            time.sleep(0.01)  # the lane's back-off is over
        [later] = announce(1, prefix="D")  # same aggregate, sequence 2

        publish_pending(publisher=stream.publisher())

        parked = OutboxEvent.objects.get(pk=first)
        assert (parked.status, parked.attempts) == ("dead", 2)
        assert "cannot reach" in parked.last_error
        assert OutboxEvent.objects.get(pk=later).status == "pending"  # waits behind it
        assert stream.consume(idle_timeout=0.3).received == 0

    def test_a_redriven_event_goes_out_before_the_events_it_held_back(self, stream):
        [first] = announce(1, prefix="R")
        publish_pending(
            publisher=AmqpPublisher(url=UNREACHABLE, exchange=stream.exchange), max_attempts=1
        )
        [later] = announce(1, prefix="R")

        revived = services.outbox_redrive(event_ids=[first, later], now=timezone.now())
        publish_pending(publisher=stream.publisher())

        assert revived == 1
        assert statuses([first, later]) == {"published": 2}
        consumer = stream.consume(expect=2)
        assert [e["sequence"] for e in consumer.applied] == [1, 2]

    def test_the_admin_shows_dead_events_and_redrives_them(self, client):
        [event] = announce(1, prefix="M")
        OutboxEvent.objects.filter(pk=event).update(status="dead", last_error="boom", attempts=9)
        admin = User.objects.create_superuser("ops", "ops@example.com", "pw")
        client.force_login(admin)

        listing = client.get("/admin/outbox/outboxevent/?status__exact=dead")
        response = client.post(
            "/admin/outbox/outboxevent/",
            {"action": "redrive", "_selected_action": [event]},
        )

        assert listing.status_code == 200 and b"boom" in listing.content
        assert response.status_code == 302
        assert OutboxEvent.objects.get(pk=event).status == "pending"


@pytest.mark.django_db
class TestRetention:
    def test_only_published_events_past_the_retention_are_purged(self):
        old, recent, waiting = announce(3, prefix="P")
        now = timezone.now()
        OutboxEvent.objects.filter(pk=old).update(
            status="published", published_at=now - timedelta(days=8)
        )
        OutboxEvent.objects.filter(pk=recent).update(
            status="published", published_at=now - timedelta(days=6)
        )

        purged = services.outbox_purge(now=now, retention=timedelta(days=7), chunk=1)

        assert purged == 1
        assert set(OutboxEvent.objects.values_list("pk", flat=True)) >= {recent, waiting}
        assert not OutboxEvent.objects.filter(pk=old).exists()


@pytest.mark.django_db
class TestEmbeddedSink:
    def test_json_lines_on_disk_are_the_sink_without_rabbitmq(self, tmp_path):
        ids = announce(12, subjects=3)

        publish_pending(publisher=JsonLinesPublisher(directory=tmp_path))

        consumer = consume_jsonl(
            paths=sorted(tmp_path.glob("*.jsonl")), consumer=ReferenceConsumer()
        )
        assert statuses(ids) == {"published": 12}
        assert len(consumer.applied) == 12 and consumer.gaps() == {}


@pytest.mark.django_db
class TestReferenceConsumerCommand:
    def test_it_applies_each_event_once_and_reports_what_it_dropped(self, stream, tmp_path):
        announce(6, subjects=2)
        publish_pending(publisher=stream.publisher())
        # Publish the same rows again, as a drainer killed before marking them would.
        OutboxEvent.objects.update(status="pending", published_at=None)
        publish_pending(publisher=stream.publisher())
        output = tmp_path / "applied.jsonl"

        call_command(
            "events_consume",
            url=stream.url,
            exchange=stream.exchange,
            queue=stream.queue,
            idle_timeout=0.5,
            output=output,
        )

        applied = [json.loads(line) for line in output.read_text().splitlines()]
        assert len(applied) == 6
        assert len({e["id"] for e in applied}) == 6


@pytest.mark.django_db
class TestLanes:
    def test_a_failed_batch_backs_its_lanes_off_with_jitter(self, stream):
        announce(8, subjects=8)

        publish_pending(
            publisher=AmqpPublisher(url=UNREACHABLE, exchange=stream.exchange),
            backoff_base_seconds=10.0,
        )

        backing_off = OutboxLane.objects.filter(failures=1)
        assert backing_off.exists()
        now = timezone.now()
        for lane in backing_off:
            assert now + timedelta(seconds=4) < lane.next_attempt_at < now + timedelta(seconds=11)
