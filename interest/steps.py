"""The interest app's EOD steps (``eod.steps.STEP_PATHS``): thin calls into the services."""

from __future__ import annotations

from eod.steps import StepContext, StepOutcome
from interest.selectors import accrual_window
from interest.services import interest_accrue, interest_capitalise, periodic_fees_charge


def accrue_and_capitalise(ctx: StepContext) -> StepOutcome:
    """Accrue today's interest on every account; on a month's last business day, post it."""
    window = accrual_window(calendar_code=ctx.calendar_code, business_date=ctx.business_date)
    accrued = interest_accrue(window=window, progress=ctx.progress)
    summary: dict[str, object] = {
        "accrued_accounts": accrued.rows,
        "accrual_rows_opened": accrued.opened,
        "accrued_through": accrued.accrue_to,
        "capitalised": window.month_end,
    }
    rows = accrued.rows
    if window.month_end:
        posted = interest_capitalise(window=window, now=ctx.now, progress=ctx.progress)
        summary.update(
            capitalised_accounts=posted.accounts,
            journals=posted.journals,
            entries=posted.entries,
            credit_interest_minor=posted.credit_minor,
            debit_interest_minor=posted.debit_minor,
        )
        rows += posted.accounts
    return StepOutcome(rows=rows, summary=summary)


def periodic_fees(ctx: StepContext) -> StepOutcome:
    """On a month's last business day, charge monthly and below-minimum-balance fees."""
    window = accrual_window(calendar_code=ctx.calendar_code, business_date=ctx.business_date)
    done = periodic_fees_charge(window=window, now=ctx.now, progress=ctx.progress)
    return StepOutcome(
        rows=done.accounts,
        summary={
            "month_end": window.month_end,
            "accounts": done.accounts,
            "charged_accounts": done.charged_accounts,
            "fees_and_tax_minor": done.fee_minor,
            "journals": done.journals,
            "rules": done.rules,
            "skipped_non_flat_rules": done.skipped_rules,
        },
    )
