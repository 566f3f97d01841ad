"""Reads of standing instructions."""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Q, QuerySet

from instructions.errors import InstructionNotFound
from instructions.models import StandingInstruction, StandingInstructionRun


def _instructions() -> QuerySet[StandingInstruction]:
    return StandingInstruction.objects.select_related("debit_account", "credit_account")


def si_get(*, instruction_id: int) -> StandingInstruction:
    """:raises InstructionNotFound:"""
    instruction = _instructions().filter(pk=instruction_id).first()
    if instruction is None:
        raise InstructionNotFound(f"no standing instruction {instruction_id}")
    return instruction


def si_list(*, account_number: str = "", status: str = "") -> QuerySet[StandingInstruction]:
    """Instructions touching an account (as payer or payee), newest first."""
    rows = _instructions()
    if account_number:
        rows = rows.filter(
            Q(debit_account__account_number=account_number)
            | Q(credit_account__account_number=account_number)
        )
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-pk")


def si_runs(*, instruction_id: int) -> QuerySet[StandingInstructionRun]:
    return StandingInstructionRun.objects.filter(instruction_id=instruction_id).order_by(
        "due_date", "attempt"
    )


def si_run_outcomes(*, run_on: date) -> dict[str, int]:
    """Count the attempts made by the EOD of ``run_on``, by outcome."""
    rows = (
        StandingInstructionRun.objects.filter(run_on=run_on)
        .values("outcome")
        .annotate(n=Count("id"))
    )
    return {row["outcome"]: row["n"] for row in rows}
