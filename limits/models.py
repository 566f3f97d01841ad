"""Daily limits: rules as data (with history) and the usage they have counted per business day.

Design overview: a *LimitRule* caps what may leave a customer account per business day, as an
amount (minor units of the rule's currency), a count of debits, or both. Its scope is one
account, every account of a product, every account of a customer taken together, or (no scope)
every customer account of the bank; ``channel`` and ``txn_type`` narrow it ('' = any).
Every applicable rule must have room for a debit, so the most restrictive one binds. A
supervisor's *override* is an account-scoped rule that, where it applies, replaces all the other
rules of that account, even when it is looser. *LimitUsage* counts, per rule, per subject (the
account, or the customer for a customer-wide rule) and per business date, what has been
consumed; it is written only by the ``limits_consume`` SQL function (check and increment in one
statement) and released by a reversal or a rejected maker-checker item. See docs/limits.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.models import Account, Customer, Product
from ledger.models import Journal

# Only movements that take money out of a customer account consume a limit.
LIMITED_TXN_TYPES = (Journal.TxnType.TRANSFER, Journal.TxnType.CASH_WITHDRAWAL)


class LimitRule(models.Model):
    class OnBreach(models.TextChoices):
        REFUSE = "refuse", "Refuse the movement"
        REQUIRE_APPROVAL = "require_approval", "Enter it for a checker's approval"

    class Scope(models.TextChoices):
        ACCOUNT = "account", "One account"
        PRODUCT = "product", "Each account of a product"
        CUSTOMER = "customer", "All accounts of a customer together"
        BANK = "bank", "Each customer account of the bank"

    name = models.CharField(max_length=100, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="limit_rules"
    )
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="limit_rules"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="limit_rules"
    )
    channel = models.CharField(max_length=8, choices=Journal.Channel.choices, blank=True)
    txn_type = models.CharField(
        max_length=16,
        choices=[(t.value, t.label) for t in LIMITED_TXN_TYPES],
        blank=True,
    )
    currency = models.CharField(max_length=3)
    max_amount_minor = models.BigIntegerField(null=True, blank=True)
    max_count = models.IntegerField(null=True, blank=True)
    on_breach = models.CharField(max_length=16, choices=OnBreach.choices, default=OnBreach.REFUSE)
    # A supervisor's per-account override: replaces the account's other rules where it applies.
    is_override = models.BooleanField(default=False)
    # Rules are switched off, never deleted: usage rows and history point at them.
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        indexes = [
            models.Index(
                fields=["account"], name="limitrule_account_idx", condition=Q(account__isnull=False)
            ),
            models.Index(
                fields=["product"], name="limitrule_product_idx", condition=Q(product__isnull=False)
            ),
            models.Index(
                fields=["customer"],
                name="limitrule_customer_idx",
                condition=Q(customer__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(account__isnull=True, product__isnull=True)
                    | Q(account__isnull=True, customer__isnull=True)
                    | Q(product__isnull=True, customer__isnull=True)
                ),
                name="limitrule_one_scope",
            ),
            models.CheckConstraint(
                condition=Q(max_amount_minor__isnull=False) | Q(max_count__isnull=False),
                name="limitrule_has_a_limit",
            ),
            models.CheckConstraint(
                condition=Q(max_amount_minor__isnull=True) | Q(max_amount_minor__gt=0),
                name="limitrule_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_count__isnull=True) | Q(max_count__gt=0),
                name="limitrule_count_positive",
            ),
            models.CheckConstraint(
                condition=Q(is_override=False) | Q(account__isnull=False),
                name="limitrule_override_is_per_account",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="limitrule_currency_iso"
            ),
            # One override row per account: setting it again replaces it (with history).
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(is_override=True),
                name="limitrule_one_override_per_account",
            ),
        ]

    def __str__(self) -> str:
        what = self.name or f"{self.scope} limit"
        return f"#{self.pk} {what} ({self.currency})"

    @property
    def scope(self) -> str:
        if self.account_id is not None:
            return self.Scope.ACCOUNT
        if self.product_id is not None:
            return self.Scope.PRODUCT
        if self.customer_id is not None:
            return self.Scope.CUSTOMER
        return self.Scope.BANK


class LimitUsage(models.Model):
    """What one rule has counted for one subject on one business date."""

    rule = models.ForeignKey(LimitRule, on_delete=models.PROTECT, related_name="usages")
    # The account id, or the customer id when the rule is customer-wide.
    subject_id = models.BigIntegerField()
    business_date = models.DateField()
    used_amount_minor = models.BigIntegerField(default=0)
    used_count = models.IntegerField(default=0)

    class Meta:
        verbose_name_plural = "limit usage"
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject_id", "business_date"], name="limitusage_one_per_day"
            ),
            models.CheckConstraint(
                condition=Q(used_amount_minor__gte=0) & Q(used_count__gte=0),
                name="limitusage_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} subject {self.subject_id} on {self.business_date}"
