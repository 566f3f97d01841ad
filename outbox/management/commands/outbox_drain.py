"""A foreground drainer: the same drain loop as the Celery task, until Ctrl-C or SIGTERM.

    manage.py outbox_drain                    # forever (never lingers out)
    manage.py outbox_drain --until-idle       # drain what is there, then exit

Useful where no Celery worker runs, and for benchmarks. ``--pause-after-publish`` is a test
hook: it waits between the broker's confirms and marking the batch, so a test can kill the
process in that window and show that nothing is lost.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from banksim.core import clock
from outbox import services
from outbox.breaker import default_breaker
from outbox.publishers import default_publisher


class Command(BaseCommand):
    help = "Publish pending outbox events in the foreground (same loop as the Celery task)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--until-idle", action="store_true", help="exit when nothing is due")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--lanes-per-claim", type=int, default=None)
        parser.add_argument("--slots", type=int, default=None, help="drainer slots to compete for")
        parser.add_argument("--pause-after-publish", type=float, default=0.0, help="test hook")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = {"now": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        overrides: dict[str, Any] = {"max_seconds": None}
        if not options["until_idle"]:
            overrides["linger_seconds"] = None
        for name in ("batch_size", "lanes_per_claim", "slots"):
            if options[name] is not None:
                overrides[name] = options[name]
        pause = options["pause_after_publish"]
        config = services.DrainConfig.from_settings(**overrides)
        total = 0
        while not stop["now"]:
            report = services.outbox_drain(
                publisher=default_publisher(),
                breaker=default_breaker(),
                config=config,
                clock=clock.now,
                after_publish=(lambda: time.sleep(pause)) if pause else None,
                should_stop=lambda: stop["now"],
            )
            total += report.published
            for error in report.errors:
                self.stderr.write(error)
            if report.stopped == "busy":
                time.sleep(1.0)  # every slot is taken: wait for one
            elif options["until_idle"]:
                break
        self.stdout.write(f"outbox_drain: published {total} event(s)")
