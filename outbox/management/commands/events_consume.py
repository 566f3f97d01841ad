"""The reference consumer: read events, drop duplicates by id, apply each subject in order.

    manage.py events_consume --queue audit-feed              # EVENTS_URL / EVENTS_EXCHANGE
    manage.py events_consume --queue q --binding 'transaction.*' --max-events 100
    manage.py events_consume --jsonl var/events/events-2026-11-30.jsonl

Prints each applied event as one JSON line (or to --output), then a summary on stderr; exits
non-zero if a subject has a gap that never filled or two events claim one sequence number.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outbox.consumer import ReferenceConsumer, consume_amqp, consume_jsonl


class Command(BaseCommand):
    help = "Consume BankSim events once each, in per-subject sequence order (reference consumer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=None, help="AMQP URL (default: EVENTS_URL)")
        parser.add_argument("--exchange", default=None, help="default: EVENTS_EXCHANGE")
        parser.add_argument("--queue", help="queue to read; declared and bound if missing")
        parser.add_argument(
            "--binding", action="append", help="routing-key pattern(s); default '#'"
        )
        parser.add_argument("--max-events", type=int, default=None)
        parser.add_argument("--idle-timeout", type=float, default=2.0)
        parser.add_argument(
            "--from-first-seen",
            action="store_true",
            help="start each subject at the first sequence seen (joined late)",
        )
        parser.add_argument("--jsonl", nargs="*", type=Path, help="read JSON-lines files instead")
        parser.add_argument("--output", type=Path, default=None, help="applied events go here")

    def handle(self, *args: Any, **options: Any) -> None:
        out = options["output"].open("w") if options["output"] else None
        sink = out or self.stdout

        def apply(envelope: dict[str, Any]) -> None:
            sink.write(json.dumps(envelope, separators=(",", ":")) + "\n")

        consumer = ReferenceConsumer(apply=apply, start_at_first_seen=options["from_first_seen"])
        try:
            if options["jsonl"]:
                consume_jsonl(paths=options["jsonl"], consumer=consumer)
            else:
                if not options["queue"]:
                    raise CommandError("--queue is required unless --jsonl is given")
                consume_amqp(
                    url=options["url"] or settings.OUTBOX_PUBLISH_URL,
                    exchange=options["exchange"] or settings.OUTBOX_EXCHANGE,
                    queue=options["queue"],
                    bindings=options["binding"] or ["#"],
                    consumer=consumer,
                    max_events=options["max_events"],
                    idle_timeout=options["idle_timeout"],
                )
        finally:
            if out is not None:
                out.close()
        summary = consumer.summary()
        sys.stderr.write(json.dumps(summary) + "\n")
        if summary["gaps"] or summary["conflicts"]:
            raise CommandError("events_consume: gaps or sequence conflicts (see the summary)")
