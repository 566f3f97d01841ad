"""Check every ledger invariant; exit non-zero naming what broke."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_violations


class Command(BaseCommand):
    help = "Verify the ledger: zero sums, balanced journals, balances equal to their entries."

    def handle(self, *args: Any, **options: Any) -> None:
        violations = ledger_violations()
        if violations:
            for v in violations:
                self.stderr.write(f"FAIL {v.check}: {v.detail}")
            raise CommandError(f"ledger_verify: {len(violations)} violation(s)")
        self.stdout.write(self.style.SUCCESS("ledger_verify: OK, every invariant holds"))
