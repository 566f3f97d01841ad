"""End-of-day runs and their checkpoints.

Design overview: one *EodRun* per (calendar, business date) is the run's checkpoint record;
its *EodSteps* (one per name of ``eod.steps.STEP_ORDER``) say which steps are done. A run
that failed or was killed is resumed by running it again: the orchestrator skips the steps
marked done and re-runs the first one that is not, which is safe because every step is
idempotent per business date. *EodReport* rows hold the reports written when the day closes.
"""

from __future__ import annotations

from django.db import models


class EodRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        BLOCKED = "blocked", "Blocked"

    calendar = models.ForeignKey("accounts.Calendar", on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "EOD run"
        ordering = ["-business_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["calendar", "business_date"], name="eod_run_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"EOD {self.business_date} {self.status}"


class EodStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(EodRun, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=40)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # How many times the step was started: more than one means it was resumed.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "EOD step"
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="eod_step_one_per_run")]

    def __str__(self) -> str:
        return f"{self.name} {self.status}"


class EodReport(models.Model):
    """One report of a closed business date, as CSV text."""

    run = models.ForeignKey(EodRun, on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=40)
    content = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "EOD report"
        ordering = ["run", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["run", "kind"], name="eod_report_one_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.run.business_date} {self.kind}"
