"""Drainers racing each other and the producers, and a drainer killed with SIGKILL mid-batch.

What these prove against real PostgreSQL and RabbitMQ: with several drainers claiming lanes
with SKIP LOCKED while services keep committing, every event reaches the exchange, each
aggregate's events arrive in sequence order (never one before its predecessor), and a drainer
killed between the broker's confirm and its commit loses nothing: the next drainer publishes
the same events again under the same ids, and the reference consumer applies each once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from banksim.core.money import Money
from ledger import services as ledger_services
from outbox import services
from outbox.breaker import CircuitBreaker
from outbox.consumer import ReferenceConsumer
from outbox.events import Event, EventType
from outbox.models import OutboxEvent
from outbox.testing import drain_until_idle, rabbit_stream
from tests.concurrency.conftest import run_together
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def stream():
    with rabbit_stream(url=settings.OUTBOX_PUBLISH_URL) as made:
        yield made


@pytest.fixture(autouse=True)
def lanes():
    services.outbox_lanes_ensure()


def assert_delivered_once_in_order(consumer: ReferenceConsumer, ids: list) -> None:
    assert {e["id"] for e in consumer.applied} == {str(i) for i in ids}
    assert len(consumer.applied) == len(ids)
    assert consumer.gaps() == {} and consumer.conflicts == []
    by_subject: dict[str, list[int]] = {}
    for envelope in consumer.applied:
        by_subject.setdefault(envelope["subject"], []).append(envelope["sequence"])
    for sequences in by_subject.values():
        assert sequences == list(range(1, len(sequences) + 1))


class TestConcurrentDrainers:
    def test_drainers_racing_producers_keep_every_aggregate_in_order(
        self, bank, funded_account, open_account, stream
    ):
        supervisor = UserFactory(username="ops", roles=["supervisor"])
        accounts = [funded_account("100.00") for _ in range(2)]
        stop = threading.Event()
        drainer_errors: list[BaseException] = []

        def produce(index: int) -> None:
            # Six producers on two accounts: each account's events come from several sessions.
            account = accounts[index % 2]
            for _ in range(10):
                hold = ledger_services.hold_place(
                    account_id=account.pk,
                    amount=Money.parse("0.01", "USD"),
                    reason="race",
                    expires_on=None,
                    actor=supervisor,
                    business_date=bank.business_date,
                    now=timezone.now(),
                )
                ledger_services.hold_release(hold_id=hold.pk, actor=supervisor, now=timezone.now())

        def drain() -> None:
            try:
                services.outbox_drain(
                    publisher=stream.publisher(),
                    breaker=CircuitBreaker(),
                    config=services.DrainConfig.from_settings(
                        slots=3,
                        lanes_per_claim=3,
                        batch_size=7,
                        poll_seconds=0.005,
                        linger_seconds=None,
                        max_seconds=None,
                    ),
                    clock=timezone.now,
                    should_stop=stop.is_set,
                )
            except BaseException as exc:
                drainer_errors.append(exc)
            finally:
                connection.close()

        drainers = [threading.Thread(target=drain, name=f"drainer-{i}") for i in range(3)]
        for thread in drainers:
            thread.start()
        outcomes = run_together(produce, 6, timeout=90)
        stop.set()
        for thread in drainers:
            thread.join(timeout=30)
        drain_until_idle(publisher=stream.publisher())

        assert drainer_errors == []
        assert [o.error for o in outcomes if o.error] == []
        ids = list(OutboxEvent.objects.values_list("event_id", flat=True))
        assert OutboxEvent.objects.exclude(status="published").count() == 0
        consumer = stream.consume(expect=len(ids))
        assert consumer.out_of_order == 0  # no event ever arrived before its predecessor
        assert_delivered_once_in_order(consumer, ids)


class TestDrainerKilledMidBatch:
    def test_a_sigkilled_drainer_loses_nothing_and_its_batch_is_published_again(self, stream):
        for i in range(30):
            with transaction.atomic():
                services.outbox_enqueue(
                    event=Event(
                        type=EventType.ACCOUNT_FROZEN,
                        aggregate_id=f"K{i % 4:04d}",
                        time=timezone.now(),
                        business_date=None,
                        data={"n": i},
                    )
                )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "banksim.settings.test",
            "DATABASE_URL": f"postgres://{connection.settings_dict['USER']}@"
            f"{connection.settings_dict['HOST']}:{connection.settings_dict['PORT'] or 5432}/"
            f"{connection.settings_dict['NAME']}",
            "EVENTS_URL": stream.url,
            "EVENTS_EXCHANGE": stream.exchange,
        }
        drainer = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "outbox_drain",
                "--batch-size",
                "10",
                "--lanes-per-claim",
                "16",
                "--pause-after-publish",
                "30",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            # The first batch is confirmed by the broker; the drainer now sleeps before it
            # marks the rows. Kill it there, the worst moment.
            seen = stream.consume(expect=10, idle_timeout=20)
            assert seen.received == 10
            os.kill(drainer.pid, signal.SIGKILL)
            drainer.wait(timeout=10)
        finally:
            if drainer.poll() is None:
                drainer.kill()
                drainer.wait()
        assert OutboxEvent.objects.filter(status="published").count() == 0

        drain_until_idle(publisher=stream.publisher())

        ids = list(OutboxEvent.objects.values_list("event_id", flat=True))
        assert OutboxEvent.objects.exclude(status="published").count() == 0
        consumer = stream.consume(consumer=seen, idle_timeout=1.0)
        assert consumer.duplicates == 10  # the killed batch, published again, dropped by id
        assert_delivered_once_in_order(consumer, ids)
