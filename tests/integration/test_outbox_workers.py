"""The moving parts around the drain: circuit breaker, on-commit nudge, the Celery tasks."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from banksim.celery import app
from outbox import nudge as outbox_nudge
from outbox import services, tasks
from outbox.breaker import CircuitBreaker
from outbox.events import Event, EventType
from outbox.models import OutboxEvent
from outbox.testing import rabbit_stream


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def enqueue_one(aggregate: str = "W0001") -> int:
    return services.outbox_enqueue(
        event=Event(
            type=EventType.ACCOUNT_FROZEN,
            aggregate_id=aggregate,
            time=timezone.now(),
            business_date=None,
        )
    )


class TestCircuitBreaker:
    def test_it_opens_after_the_threshold_and_lets_a_probe_through_after_the_cool_down(self):
        clock = FakeClock()
        breaker = CircuitBreaker(threshold=3, cooldown=10.0, monotonic=clock)

        for _ in range(2):
            breaker.record_failure()
        still_closed = breaker.allows()
        breaker.record_failure()

        assert still_closed and not breaker.allows()
        clock.now += 10.0
        assert breaker.allows() and breaker.probing

    def test_a_failed_probe_reopens_it_for_longer_and_a_success_closes_it(self):
        clock = FakeClock()
        breaker = CircuitBreaker(threshold=1, cooldown=10.0, max_cooldown=15.0, monotonic=clock)
        breaker.record_failure()
        clock.now += 10.0
        breaker.allows()

        breaker.record_failure()  # the probe failed

        clock.now += 10.0
        assert not breaker.allows()  # the cool-down doubled (capped at 15 s, jitter >= 75 %)
        clock.now += 5.0
        assert breaker.allows()
        breaker.record_success()
        assert breaker.state == CircuitBreaker.CLOSED and breaker.failures == 0


@pytest.mark.django_db(transaction=True)
class TestNudge:
    def test_commits_nudge_a_drainer_at_most_once_per_interval_and_rollbacks_never(
        self, settings, monkeypatch
    ):
        settings.OUTBOX_NUDGE = True
        settings.OUTBOX_NUDGE_INTERVAL_SECONDS = 0.5
        sent: list[dict] = []
        first = threading.Event()

        def send_task(name: str, **options: object) -> None:
            sent.append({"name": name, **options})
            first.set()

        monkeypatch.setattr(app, "send_task", send_task)
        monkeypatch.setattr(outbox_nudge, "_nudger", outbox_nudge._Nudger())
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_one()
            raise RuntimeError("rolled back")
        time.sleep(0.2)
        nothing_for_a_rollback = list(sent)

        for _ in range(20):
            with transaction.atomic():
                enqueue_one()
        first.wait(5)
        time.sleep(0.2)

        assert nothing_for_a_rollback == []
        assert 1 <= len(sent) <= 2
        assert sent[0]["name"] == "outbox.drain" and sent[0]["queue"] == "outbox"

    def test_a_commit_hook_is_registered_once_per_interval_and_again_after_a_rollback(
        self, settings, monkeypatch
    ):
        settings.OUTBOX_NUDGE = True
        settings.OUTBOX_NUDGE_INTERVAL_SECONDS = 0.3
        monkeypatch.setattr(app, "send_task", lambda name, **options: None)
        monkeypatch.setattr(outbox_nudge, "_nudger", outbox_nudge._Nudger())

        def hooks_of_one_transaction(*, commit: bool = True) -> int:
            with transaction.atomic():
                outbox_nudge.nudge_on_commit()
                hooks = len(transaction.get_connection().run_on_commit)
                if not commit:
                    transaction.set_rollback(True)
            return hooks

        rolled_back = hooks_of_one_transaction(commit=False)
        after_the_rollback = hooks_of_one_transaction()
        right_after_a_nudge = hooks_of_one_transaction()
        time.sleep(0.35)
        an_interval_later = hooks_of_one_transaction()

        assert (rolled_back, after_the_rollback, right_after_a_nudge, an_interval_later) == (
            1,
            1,
            0,
            1,
        )

    def test_steady_commits_nudge_once_and_a_quiet_spell_nudges_again(self, settings, monkeypatch):
        settings.OUTBOX_NUDGE = True
        settings.OUTBOX_NUDGE_INTERVAL_SECONDS = 0.05
        settings.OUTBOX_DRAIN_LINGER_SECONDS = 0.6
        settings.OUTBOX_SWEEP_SECONDS = 60.0
        sent: list[float] = []
        monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append(time.time()))
        monkeypatch.setattr(outbox_nudge, "_nudger", outbox_nudge._Nudger())

        def commits_for(seconds: float) -> None:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                with transaction.atomic():
                    enqueue_one()
                time.sleep(0.02)

        # Commits keep coming for well over a nudge interval: the drainer the first nudge
        # woke sees the rest, so one nudge.
        commits_for(0.5)
        time.sleep(0.2)
        assert len(sent) == 1
        # Quiet for longer than a drainer lingers: it may have stopped, so nudge again.
        time.sleep(0.7)
        commits_for(0.2)
        time.sleep(0.2)
        assert len(sent) == 2


class TestTasks:
    @pytest.mark.django_db(transaction=True)
    def test_the_drain_task_publishes_what_is_pending(self, settings):
        services.outbox_lanes_ensure()
        with rabbit_stream(url=settings.OUTBOX_PUBLISH_URL) as stream:
            settings.OUTBOX_EXCHANGE = stream.exchange
            settings.OUTBOX_DRAIN_LINGER_SECONDS = 0.0
            with transaction.atomic():
                event = enqueue_one()

            tasks.drain_task.apply()

            assert OutboxEvent.objects.get(pk=event).status == "published"
            assert stream.consume(expect=1).received == 1

    @pytest.mark.django_db
    def test_the_purge_task_keeps_what_is_inside_the_retention(self, settings):
        with transaction.atomic():
            old, recent = enqueue_one(), enqueue_one()
        OutboxEvent.objects.filter(pk=old).update(
            status="published", published_at=timezone.now() - timedelta(days=30)
        )
        OutboxEvent.objects.filter(pk=recent).update(
            status="published", published_at=timezone.now()
        )

        tasks.purge_task.apply()

        assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [recent]

    def test_the_tasks_are_late_acked_and_given_back_when_a_worker_dies(self):
        for task in (tasks.drain_task, tasks.purge_task):
            assert task.acks_late and task.reject_on_worker_lost and task.ignore_result
        assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
        assert settings.CELERY_BEAT_SCHEDULE["outbox-sweep"]["task"] == "outbox.drain"
