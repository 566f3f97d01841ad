"""Seal the audit log, recompute its hash chain from the start, name the first broken row."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.context import batch_context
from audit.services import audit_chain_report


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain: every row's content hash, its link to the row "
        "before it and the chain head. Exits non-zero naming the first broken row."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-seal",
            action="store_true",
            help="Verify only what is sealed already; do not seal committed rows first.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with batch_context("audit_verify"):
            report = audit_chain_report(seal=not options["no_seal"])
        if report.violations:
            first = report.violations[0]
            where = f"row id {first.row_id}" if first.row_id is not None else "the chain's end"
            for violation in report.violations:
                self.stderr.write(f"BROKEN {violation}")
            raise CommandError(
                f"audit_verify: first broken row: {where} (chain seq {first.seq}); "
                f"{len(report.violations)} problem(s)"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"audit_verify: OK, {report.sealed} rows chained, head seq {report.head_seq} "
                f"hash {report.head_hash}; {report.unsealed} committed since, not yet sealed"
            )
        )
