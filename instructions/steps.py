"""Step 4 of the end of day: standing instructions due today (see ``eod.steps``)."""

from __future__ import annotations

from eod.steps import StepContext, StepOutcome
from instructions.services import si_run_due


def run_due(ctx: StepContext) -> StepOutcome:
    """Post the standing instructions due on the business date being closed; idempotent."""
    tally = si_run_due(business_date=ctx.business_date, now=ctx.now, progress=ctx.progress)
    return StepOutcome(rows=tally.due, summary=tally.as_summary())
