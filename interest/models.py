"""Per-account interest accrual state.

Design overview: one row per customer account carries the interest accrued but not yet
posted, in exact integer *units* (``interest.daycount.UNITS_PER_MINOR`` units = one minor
unit), separately for credit interest (the bank owes it on a positive balance) and debit
interest (the customer owes it on an overdraft), because they book to different GL heads
and an account can be in credit one week and overdrawn the next. Daily accrual is one
set-based UPDATE over these rows; month-end capitalisation posts the whole minor units and
leaves the fraction here for the next period, so no fraction of a cent is ever lost.

``accrued_through`` is the last calendar day included in the accrual; ``capitalised_on`` the
business date whose capitalisation last took interest from this row, and ``fees_charged_on``
the business date of the last periodic-fee run that charged it. Each is set in the same
statement that does the work, which is what makes the EOD steps safe to re-run after a kill.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from accounts.models import Account


class InterestAccrual(models.Model):
    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.PROTECT, related_name="interest_accrual"
    )
    credit_units = models.DecimalField(max_digits=40, decimal_places=0, default=Decimal(0))
    debit_units = models.DecimalField(max_digits=40, decimal_places=0, default=Decimal(0))
    accrued_through = models.DateField()
    capitalised_on = models.DateField(null=True, blank=True)
    fees_charged_on = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "interest_accrual"
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_units__gte=0) & Q(debit_units__gte=0),
                name="interest_accrual_units_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"accrual of account {self.account_id} through {self.accrued_through}"
