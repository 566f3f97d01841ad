"""``manage.py eod_run``: close the business day in the foreground, printing progress."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from banksim.core import clock
from eod.models import EodRun
from eod.services import ProgressLine, eod_run
from eod.steps import STEP_ORDER


class Command(BaseCommand):
    help = "Run (or resume) end of day for a calendar; exits non-zero if blocked or failed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--calendar", default="MAIN", help="calendar code (default MAIN)")
        parser.add_argument(
            "--stop-after", choices=STEP_ORDER, help="stop after this step (drills)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        def report(line: ProgressLine) -> None:
            self.stdout.write(str(line))

        run = eod_run(
            calendar_code=options["calendar"],
            now=clock.now(),
            stop_after=options["stop_after"],
            reporter=report,
        )
        self.stdout.write(f"\nEOD {run.business_date}: {run.status}")
        self.stdout.write(
            f"{'step':<24}{'status':<9}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'tries':>7}"
        )
        for step in run.steps.order_by("position"):
            seconds = step.summary.get("seconds", "")
            rate = step.summary.get("rows_per_s")
            self.stdout.write(
                f"{step.name:<24}{step.status:<9}{step.rows_done:>10}{seconds!s:>10}"
                f"{'' if rate is None else f'{rate:,}':>12}{step.attempts:>7}"
            )
        if run.status in (EodRun.Status.BLOCKED, EodRun.Status.FAILED):
            raise CommandError(f"EOD {run.status}: {run.error}")
