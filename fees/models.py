"""Fee rules, waivers and free-use counters.

Design overview: a *FeeRule* says what one *event* (a transfer out, a cash withdrawal, a
month's maintenance...) costs, in one currency, for a *scope* (product, channel and customer
segment, each optional: ``NULL`` product and ``''`` channel/segment mean "any"), during an
effective period ``[effective_from, effective_to)``. The rule in force on the business date
with the most specific matching scope wins; ``priority`` (lower wins) settles rules of equal
specificity, then the older rule (lower id). Two rules with the same event, currency and
scope may not overlap in time: an exclusion constraint refuses it even under a race.

Every edit bumps ``version`` and leaves a history row, and every fee posting stores the rule
id, version and the calculation inputs in ``Journal.details["fees"]``, so a statement can say
why, and editing a rule never rewrites a posting. Amounts are integer minor units of the
rule's currency; rates are percentages (``0.5`` = 0.5 %). A *FeeWaiver* zeroes a customer's
or an account's fees (one event or all) between two dates, with a reason. *FeeUsage* counts
uses per rule, account and period for "the first N are free".
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateRangeField, RangeBoundary, RangeOperators
from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Coalesce
from simple_history.models import HistoricalRecords

from accounts.models import Account, Customer, Product
from fees import calculators


class FeeEvent(models.TextChoices):
    TRANSFER_OUT = "transfer_out", "Transfer out"
    CASH_WITHDRAWAL = "cash_withdrawal", "Cash withdrawal"
    CASH_DEPOSIT = "cash_deposit", "Cash deposit"
    REVERSAL = "reversal", "Reversal"
    MONTHLY_MAINTENANCE = "monthly_maintenance", "Monthly maintenance"
    BELOW_MIN_BALANCE = "below_min_balance", "Below minimum balance"
    DORMANCY = "dormancy", "Dormancy"


class CalcType(models.TextChoices):
    FLAT = calculators.FLAT, "Flat amount"
    PERCENT = calculators.PERCENT, "Percentage of the amount"
    TIERED = calculators.TIERED, "Tiered (slab by amount)"


class FreePeriod(models.TextChoices):
    DAY = calculators.DAY, "Business day"
    MONTH = calculators.MONTH, "Calendar month"


# Kept here rather than imported from ledger.models so the fees tables do not depend on the
# ledger's; a test pins them to Journal.Channel.
CHANNELS = (("teller", "Teller"), ("api", "API"), ("batch", "Batch"))


class DateRange(Func):
    """PostgreSQL ``daterange(lower, upper)``: half-open ``[lower, upper)``, NULL = unbounded."""

    function = "DATERANGE"
    output_field = DateRangeField()


class FeeRule(models.Model):
    name = models.CharField(max_length=100)
    event = models.CharField(max_length=24, choices=FeeEvent.choices)
    currency = models.CharField(max_length=3)
    # Scope: NULL product / '' channel / '' segment match anything.
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=CHANNELS, blank=True)
    segment = models.CharField(max_length=12, choices=Customer.Segment.choices, blank=True)
    # Among matching rules of equal specificity, the lower priority wins.
    priority = models.PositiveSmallIntegerField(default=100)
    calc_type = models.CharField(max_length=8, choices=CalcType.choices)
    flat_minor = models.BigIntegerField(default=0)
    rate_percent = models.DecimalField(max_digits=9, decimal_places=6, default=Decimal(0))
    # [{"up_to_minor": int | null, "flat_minor": int, "rate_percent": "0.1"}], ascending,
    # the last open-ended; validated by the services.
    tiers = models.JSONField(default=list, blank=True)
    min_fee_minor = models.BigIntegerField(null=True, blank=True)
    max_fee_minor = models.BigIntegerField(null=True, blank=True)
    free_uses = models.PositiveIntegerField(default=0)
    free_period = models.CharField(
        max_length=8, choices=FreePeriod.choices, default=FreePeriod.MONTH
    )
    tax_rate_percent = models.DecimalField(max_digits=9, decimal_places=6, default=Decimal(0))
    income_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    tax_account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)  # exclusive; NULL: open-ended
    version = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        indexes = [
            models.Index(fields=["event", "currency", "effective_from"], name="fee_rule_lookup_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event__in=FeeEvent.values), name="fee_rule_event_known"
            ),
            models.CheckConstraint(
                condition=Q(calc_type__in=CalcType.values), name="fee_rule_calc_type_known"
            ),
            models.CheckConstraint(
                condition=Q(free_period__in=FreePeriod.values), name="fee_rule_free_period_known"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=["", *(c for c, _ in CHANNELS)]),
                name="fee_rule_channel_known",
            ),
            models.CheckConstraint(
                condition=Q(segment__in=["", *Customer.Segment.values]),
                name="fee_rule_segment_known",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="fee_rule_currency_iso"
            ),
            models.CheckConstraint(
                condition=Q(rate_percent__gte=0)
                & Q(rate_percent__lte=100)
                & Q(tax_rate_percent__gte=0)
                & Q(tax_rate_percent__lte=100),
                name="fee_rule_rates_0_to_100",
            ),
            models.CheckConstraint(
                condition=Q(flat_minor__gte=0)
                & (Q(min_fee_minor__isnull=True) | Q(min_fee_minor__gte=0))
                & (Q(max_fee_minor__isnull=True) | Q(max_fee_minor__gte=0)),
                name="fee_rule_amounts_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(min_fee_minor__isnull=True)
                | Q(max_fee_minor__isnull=True)
                | Q(min_fee_minor__lte=F("max_fee_minor")),
                name="fee_rule_min_lte_max",
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=F("effective_from")),
                name="fee_rule_period_ordered",
            ),
            models.CheckConstraint(
                condition=Q(tax_rate_percent=0) | Q(tax_account__isnull=False),
                name="fee_rule_tax_has_account",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="fee_rule_version_gte_1"),
            # One rule per scope at a time. NULL product is "any product": coalesce it to 0
            # (never a product id) so two "any product" rules collide as they should.
            ExclusionConstraint(
                name="fee_rule_no_overlap_per_scope",
                expressions=[
                    ("event", RangeOperators.EQUAL),
                    ("currency", RangeOperators.EQUAL),
                    (
                        Coalesce("product", Value(0), output_field=models.BigIntegerField()),
                        RangeOperators.EQUAL,
                    ),
                    ("channel", RangeOperators.EQUAL),
                    ("segment", RangeOperators.EQUAL),
                    (
                        DateRange("effective_from", "effective_to", RangeBoundary()),
                        RangeOperators.OVERLAPS,
                    ),
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.event} {self.currency} v{self.version})"


class FeeWaiver(models.Model):
    """Fees of one account, or of every account of one customer, are not charged."""

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    event = models.CharField(max_length=24, choices=FeeEvent.choices, blank=True)  # '': all
    reason = models.CharField(max_length=200)
    valid_from = models.DateField()
    expires_on = models.DateField()  # the first business date it no longer applies
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        indexes = [
            models.Index(fields=["account"], name="fee_waiver_account_idx"),
            models.Index(fields=["customer"], name="fee_waiver_customer_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(account__isnull=True, customer__isnull=False)
                | Q(account__isnull=False, customer__isnull=True),
                name="fee_waiver_account_xor_customer",
            ),
            models.CheckConstraint(
                condition=Q(expires_on__gt=F("valid_from")), name="fee_waiver_period_ordered"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="fee_waiver_has_reason"),
            models.CheckConstraint(
                condition=Q(event__in=["", *FeeEvent.values]), name="fee_waiver_event_known"
            ),
        ]

    def __str__(self) -> str:
        target = f"account {self.account_id}" if self.account_id else f"customer {self.customer_id}"
        return f"Waiver {self.pk} of {self.event or 'all fees'} for {target}"


class FeeUsage(models.Model):
    """How many times an account used a rule's event in one period (free first N)."""

    rule = models.ForeignKey(FeeRule, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField()
    used = models.IntegerField(default=0)

    class Meta:
        verbose_name_plural = "fee usage"
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "account", "period_start"], name="fee_usage_one_per_period"
            ),
            models.CheckConstraint(condition=Q(used__gte=0), name="fee_usage_used_gte_0"),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} account {self.account_id} {self.period_start}: {self.used}"
