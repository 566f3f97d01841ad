"""Standing instructions: customer-defined recurring transfers run by the EOD batch.

Design overview: an instruction says "move this amount from A to B every day/week/month from
``next_date`` until ``end_date``". The EOD step ``instructions.steps.run_due`` posts each due
occurrence through the normal posting path. Every attempt first claims a
``StandingInstructionRun`` row, unique on (instruction, due_date, attempt), in the same
transaction as the posting and the advance of ``next_date``; so an attempt either happened
completely (row, journal, new schedule) or not at all, and a re-run after a kill finds the
row and the advanced schedule and posts nothing twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.models import Account


class StandingInstruction(models.Model):
    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    # The scheduled date of the next occurrence; it stays put while that occurrence is retried.
    next_date = models.DateField()
    # Monthly schedules keep the day of month they started on, so Jan 31 -> Feb 28 -> Mar 31.
    anchor_day = models.PositiveSmallIntegerField()
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    max_retries = models.PositiveSmallIntegerField(default=0)
    carry_forward = models.BooleanField(default=False)
    # Failed attempts of the current occurrence; back to zero when it posts.
    failures = models.PositiveSmallIntegerField(default=0)
    # A retry waits for a later business date than the failed attempt's.
    retry_not_before = models.DateField(null=True, blank=True)
    last_error = models.CharField(max_length=64, blank=True, default="")
    narration = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="si_amount_positive"),
            models.CheckConstraint(
                condition=~Q(debit_account=models.F("credit_account")), name="si_accounts_differ"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True)
                | Q(end_date__gte=models.F("next_date"))
                | ~Q(status="active"),
                name="si_end_after_next",
            ),
            models.CheckConstraint(
                condition=Q(anchor_day__gte=1, anchor_day__lte=31), name="si_anchor_day_range"
            ),
        ]
        indexes = [
            # The EOD step's scan: active instructions due on or before the business date.
            models.Index(
                fields=["next_date", "id"],
                name="si_active_due_idx",
                condition=Q(status="active"),
            ),
        ]

    def __str__(self) -> str:
        return f"SI {self.pk} {self.frequency} {self.amount_minor} {self.currency}"


class StandingInstructionRun(models.Model):
    class Outcome(models.TextChoices):
        POSTED = "posted", "Posted"
        ENTERED = "entered", "Entered for approval"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed"

    instruction = models.ForeignKey(
        StandingInstruction, on_delete=models.PROTECT, related_name="runs"
    )
    due_date = models.DateField()
    attempt = models.PositiveSmallIntegerField()
    run_on = models.DateField()  # the business date of the EOD that made the attempt
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    txn_id = models.CharField(max_length=20, blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instruction", "due_date", "attempt"], name="si_run_once_per_attempt"
            )
        ]
        indexes = [models.Index(fields=["run_on", "outcome"], name="si_run_day_idx")]

    def __str__(self) -> str:
        return f"SI {self.instruction_id} {self.due_date} #{self.attempt} {self.outcome}"
