"""Admin for limit rules (with history) and a read-only window on daily usage.

Rules are written through the limits services, exactly like the API: the form runs the
services' validation in ``clean`` (bad input is a form error and nothing is saved) and
``save_model`` calls the create or update service. What a rule covers (scope, currency,
channel, transaction type) is fixed once created, as on the API; an override is set through
the API's per-account endpoint and is only edited here. Usage rows are written only by the
``limits_consume`` function and are never editable.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import AuditHistoryAdmin, ReadOnlyAdminMixin, format_minor
from banksim.core import clock
from banksim.core.errors import DomainError
from banksim.core.money import AMOUNT_PATTERN, InvalidAmount, Money, UnknownCurrency
from limits import services
from limits.models import LimitRule, LimitUsage
from limits.services import LimitRuleChanges, LimitRuleSpec

FIXED_AFTER_CREATE = ("account", "product", "customer", "currency", "channel", "txn_type")


class LimitRuleForm(forms.ModelForm):
    max_amount = forms.CharField(
        required=False,
        max_length=32,
        help_text="Per business day, in the rule's currency, e.g. 1000.00. Empty: no amount limit.",
    )

    class Meta:
        model = LimitRule
        fields = (
            "name",
            "account",
            "product",
            "customer",
            "channel",
            "txn_type",
            "currency",
            "max_amount",
            "max_count",
            "on_breach",
            "is_active",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rule = self.instance
        if rule.pk is not None and rule.max_amount_minor is not None:
            self.initial["max_amount"] = Money.from_minor(
                rule.max_amount_minor, rule.currency
            ).to_wire()
        self.spec: LimitRuleSpec | None = None
        self.changes: LimitRuleChanges | None = None

    def _currency(self) -> str:
        if self.instance.pk is not None:
            return self.instance.currency
        return self.cleaned_data.get("currency") or ""

    def _max_amount(self) -> Money | None:
        text = (self.cleaned_data.get("max_amount") or "").strip()
        if not text:
            return None
        if not AMOUNT_PATTERN.fullmatch(text):
            raise forms.ValidationError({"max_amount": 'a plain decimal amount like "1000.00"'})
        try:
            return Money.parse(text, self._currency())
        except InvalidAmount as exc:
            raise InvalidAmount(exc.detail, errors={"max_amount": [exc.detail]}) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            max_amount = self._max_amount()
            if self.instance.pk is None:
                self.spec = LimitRuleSpec(
                    currency=cleaned["currency"],
                    max_amount=max_amount,
                    max_count=cleaned.get("max_count"),
                    on_breach=cleaned["on_breach"],
                    channel=cleaned.get("channel") or "",
                    txn_type=cleaned.get("txn_type") or "",
                    account_id=cleaned["account"].pk if cleaned.get("account") else None,
                    product_id=cleaned["product"].pk if cleaned.get("product") else None,
                    customer_id=cleaned["customer"].pk if cleaned.get("customer") else None,
                    name=cleaned.get("name") or "",
                    is_active=cleaned.get("is_active", True),
                )
                services.limit_rule_check(spec=self.spec)
            else:
                self.changes = LimitRuleChanges(
                    name=cleaned.get("name") or "",
                    max_amount=max_amount,
                    max_count=cleaned.get("max_count"),
                    on_breach=cleaned["on_breach"],
                    is_active=cleaned.get("is_active", False),
                )
                services.limit_rule_check(
                    spec=services.limit_rule_spec_changed(rule=self.instance, changes=self.changes)
                )
        except DomainError as exc:
            self._add_domain_error(exc)
        return cleaned

    def _add_domain_error(self, exc: DomainError) -> None:
        """Show a service refusal on the form, on its field when the form has it."""
        message = f"{exc.detail} ({exc.code})"
        fields = [name for name in exc.errors if name in self.fields]
        if isinstance(exc, UnknownCurrency) and "currency" in self.fields:
            fields = ["currency"]
        if fields:
            for name in fields:
                self.add_error(name, message)
        else:
            self.add_error(None, message)


@admin.register(LimitRule)
class LimitRuleAdmin(AuditHistoryAdmin):
    form = LimitRuleForm
    list_display = (
        "id",
        "name",
        "scope_display",
        "channel",
        "txn_type",
        "currency",
        "max_amount",
        "max_count",
        "on_breach",
        "is_override",
        "is_active",
    )
    list_filter = ("is_active", "is_override", "on_breach", "currency", "channel", "txn_type")
    search_fields = ("name", "=account__account_number", "=customer__cif_id", "=product__code")
    list_select_related = ("account", "product", "customer")
    raw_id_fields = ("account", "customer")

    def get_readonly_fields(self, request: HttpRequest, obj: LimitRule | None = None) -> Any:
        # Usage rows are counted per rule: what a rule covers cannot change under them.
        base = ("is_override", "created_at", "updated_at", "created_by")
        return (*FIXED_AFTER_CREATE, *base) if obj else base

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Switched off, never deleted: usage rows and history point at the rule.
        return False

    @admin.display(description="scope")
    def scope_display(self, obj: LimitRule) -> str:
        target = obj.account or obj.product or obj.customer
        return f"{obj.scope} {target}" if target else obj.scope

    @admin.display(description="max amount", ordering="max_amount_minor")
    def max_amount(self, obj: LimitRule) -> str:
        return format_minor(obj.max_amount_minor, obj.currency)

    def save_model(
        self, request: HttpRequest, obj: LimitRule, form: LimitRuleForm, change: bool
    ) -> None:
        if change:
            assert form.changes is not None
            rule = services.limit_rule_update(
                rule_id=obj.pk, changes=form.changes, actor=request.user, now=clock.now()
            )
        else:
            assert form.spec is not None
            rule = services.limit_rule_create(spec=form.spec, actor=request.user, now=clock.now())
        obj.pk = rule.pk
        obj.refresh_from_db()


@admin.register(LimitUsage)
class LimitUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("rule", "subject_id", "business_date", "used_amount", "used_count")
    list_filter = ("business_date", "rule__currency")
    search_fields = ("=rule__id", "=subject_id")
    list_select_related = ("rule",)
    date_hierarchy = "business_date"

    @admin.display(description="used amount", ordering="used_amount_minor")
    def used_amount(self, obj: LimitUsage) -> str:
        return format_minor(obj.used_amount_minor, obj.rule.currency)
