"""``manage.py simulate --customers N --days D --seed S``: see docs/simulator.md."""

from __future__ import annotations

from typing import Any

import environ
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from instructions.simulation import simulate


class Command(BaseCommand):
    help = "Seed N customers and run D business days of synthetic activity with EOD between."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=1000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--database-url",
            default="",
            help="Run against this (migrated) PostgreSQL database instead of DATABASE_URL.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["database_url"]:
            # Settings were read before the arguments; repoint the default connection.
            target = environ.Env.db_url_config(options["database_url"])
            connections["default"].close()
            connections["default"].settings_dict.update(
                {key: target[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")}
            )
        if options["customers"] < 2 or options["days"] < 1:
            raise CommandError("--customers must be at least 2 and --days at least 1")
        result = simulate(
            customers=options["customers"],
            days=options["days"],
            seed=options["seed"],
            out=self.stdout.write,
        )
        if not result.ok:
            raise CommandError(f"{len(result.failed_checks)} integrity checks failed")
