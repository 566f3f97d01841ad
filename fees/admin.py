"""Admin for fee rules, waivers and free-use counters.

Rules and waivers are written through the fee services, exactly like the API: the forms run
the services' validation in ``clean`` (so bad input is a form error and nothing is saved) and
``save_model`` calls the create/update service (which bumps the version and records history).
Amounts and rates are typed as on the API, as strings in the rule's currency (``"12.50"``,
``"0.25"`` percent); tiers as the API's JSON list. Counters are read-only.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import AuditHistoryAdmin, ReadOnlyAdminMixin
from accounts.models import Account
from banksim.core import clock
from banksim.core.errors import DomainError
from fees import services
from fees.calculators import plain
from fees.models import FeeRule, FeeUsage, FeeWaiver
from fees.services import IMMUTABLE_FIELDS
from fees.specs import (
    SPEC_FIELDS,
    FeeRuleSpec,
    parse_amount,
    parse_rate,
    parse_tiers,
    spec_of,
    tiers_to_wire,
)

# Service error fields that the form spells differently.
_FORM_FIELD = {
    "rate_percent": "rate",
    "tax_rate_percent": "tax_rate",
    "tiers": "tier_table",
    "account": "account",
}


def _add_domain_error(form: forms.BaseForm, exc: DomainError) -> None:
    """Show a service refusal on the form: on its field when the form has one."""
    message = f"{exc.detail} ({exc.code})"
    placed = False
    for key in exc.errors:
        base = re.split(r"[.\[]", key, maxsplit=1)[0]
        name = _FORM_FIELD.get(base, base)
        if name in form.fields and name not in form.errors:
            form.add_error(name, message)
            placed = True
            break
    if not placed:
        form.add_error(None, message)


class FeeRuleAdminForm(forms.ModelForm):
    flat_fee = forms.CharField(required=False, initial="0", help_text='e.g. "2.50"')
    rate = forms.CharField(
        label="Rate percent", required=False, initial="0", help_text='percent, e.g. "0.25"'
    )
    tier_table = forms.JSONField(
        label="Tiers",
        required=False,
        initial=list,
        help_text='[{"up_to": "1000.00", "flat_fee": "1.00", "rate_percent": "0"}, '
        '{"up_to": null, "flat_fee": "0", "rate_percent": "0.1"}] (slab, ascending)',
    )
    min_fee = forms.CharField(required=False, help_text="empty: no minimum")
    max_fee = forms.CharField(required=False, help_text="empty: no maximum")
    tax_rate = forms.CharField(label="Tax rate percent", required=False, initial="0")

    class Meta:
        model = FeeRule
        fields = [
            "name",
            "event",
            "currency",
            "product",
            "channel",
            "segment",
            "priority",
            "calc_type",
            "free_uses",
            "free_period",
            "income_account",
            "tax_account",
            "effective_from",
            "effective_to",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: FeeRuleSpec | None = None
        office = Account.objects.filter(kind=Account.Kind.OFFICE).order_by("account_number")
        for name in ("income_account", "tax_account"):
            if name in self.fields:
                self.fields[name].queryset = office  # type: ignore[attr-defined]
        if self.instance.pk:
            spec = spec_of(self.instance)
            self.initial.update(
                flat_fee=spec.schedule().flat.to_wire(),
                rate=plain(spec.rate_percent),
                tier_table=tiers_to_wire(spec.tiers),
                min_fee=spec.min_fee.to_wire() if spec.min_fee is not None else "",
                max_fee=spec.max_fee.to_wire() if spec.max_fee is not None else "",
                tax_rate=plain(spec.tax_rate_percent),
            )

    def _get_validation_exclusions(self) -> set[str]:
        # The service validates the rule as a whole (the same checks as the API); model-level
        # validation would only repeat them with vaguer messages.
        return {field.name for field in FeeRule._meta.fields}

    def _build_spec(self, data: dict[str, Any]) -> FeeRuleSpec:
        currency = data.get("currency") or self.instance.currency
        product = data.get("product")
        tax_account = data.get("tax_account")
        min_fee = data.get("min_fee") or ""
        max_fee = data.get("max_fee") or ""
        return FeeRuleSpec(
            name=data["name"],
            event=data.get("event") or self.instance.event,
            currency=currency,
            calc_type=data["calc_type"],
            income_account_id=data["income_account"].pk,
            effective_from=data["effective_from"],
            effective_to=data.get("effective_to"),
            product_id=product.pk if product is not None else None,
            channel=data.get("channel") or "",
            segment=data.get("segment") or "",
            priority=data["priority"],
            flat_fee=parse_amount("flat_fee", data.get("flat_fee") or "0", currency),
            rate_percent=parse_rate("rate_percent", data.get("rate") or "0"),
            tiers=parse_tiers(data.get("tier_table") or [], currency),
            min_fee=parse_amount("min_fee", min_fee, currency) if min_fee else None,
            max_fee=parse_amount("max_fee", max_fee, currency) if max_fee else None,
            free_uses=data["free_uses"],
            free_period=data["free_period"],
            tax_rate_percent=parse_rate("tax_rate_percent", data.get("tax_rate") or "0"),
            tax_account_id=tax_account.pk if tax_account is not None else None,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            spec = self._build_spec(data)
            services.fee_rule_validate(spec=spec, rule_id=self.instance.pk)
        except DomainError as exc:
            _add_domain_error(self, exc)
        else:
            self.spec = spec
        return data


@admin.register(FeeRule)
class FeeRuleAdmin(AuditHistoryAdmin):
    form = FeeRuleAdminForm
    list_display = (
        "name",
        "event",
        "currency",
        "product",
        "channel",
        "segment",
        "priority",
        "calc_type",
        "effective_from",
        "effective_to",
        "version",
    )
    list_filter = ("event", "currency", "calc_type", "channel", "segment")
    search_fields = ("name",)
    list_select_related = ("product",)
    date_hierarchy = "effective_from"
    fieldsets = (
        (None, {"fields": ("name", "event", "currency", "version")}),
        ("Scope", {"fields": ("product", "channel", "segment", "priority")}),
        (
            "Calculation",
            {
                "fields": (
                    "calc_type",
                    "flat_fee",
                    "rate",
                    "tier_table",
                    "min_fee",
                    "max_fee",
                    "free_uses",
                    "free_period",
                )
            },
        ),
        ("Booking", {"fields": ("income_account", "tax_rate", "tax_account")}),
        ("In force", {"fields": ("effective_from", "effective_to")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: FeeRule | None = None) -> Any:
        # A different event or currency is a different rule: end this one, create another.
        return ("version", *sorted(IMMUTABLE_FIELDS)) if obj else ("version",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Postings name the rule that produced them; end a rule with effective_to instead.
        return False

    def save_model(
        self, request: HttpRequest, obj: FeeRule, form: FeeRuleAdminForm, change: bool
    ) -> None:
        assert form.spec is not None, "clean() validated the rule"
        if change:
            changes = {name: getattr(form.spec, name) for name in SPEC_FIELDS - IMMUTABLE_FIELDS}
            rule = services.fee_rule_update(rule_id=obj.pk, changes=changes, actor=request.user)
        else:
            rule = services.fee_rule_create(spec=form.spec, actor=request.user)
        obj.pk = rule.pk
        obj.version = rule.version


class FeeWaiverAdminForm(forms.ModelForm):
    class Meta:
        model = FeeWaiver
        fields = ["account", "customer", "event", "reason", "valid_from", "expires_on"]

    def _get_validation_exclusions(self) -> set[str]:
        return {field.name for field in FeeWaiver._meta.fields}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        account = data.get("account")
        customer = data.get("customer")
        try:
            services.fee_waiver_validate(
                account_id=account.pk if account is not None else None,
                customer_id=customer.pk if customer is not None else None,
                event=data.get("event") or "",
                reason=data.get("reason") or "",
                valid_from=data["valid_from"],
                expires_on=data["expires_on"],
            )
        except DomainError as exc:
            _add_domain_error(self, exc)
        return data


@admin.register(FeeWaiver)
class FeeWaiverAdmin(AuditHistoryAdmin):
    """Waivers are added here or through the API; once made they are a record, not a draft."""

    form = FeeWaiverAdminForm
    list_display = ("id", "account", "customer", "event", "valid_from", "expires_on", "reason")
    list_filter = ("event",)
    search_fields = ("=account__account_number", "=customer__cif_id", "reason")
    list_select_related = ("account", "customer")
    raw_id_fields = ("account", "customer")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: FeeWaiver, form: FeeWaiverAdminForm, change: bool
    ) -> None:
        data = form.cleaned_data
        waiver = services.fee_waiver_create(
            account_id=data["account"].pk if data.get("account") else None,
            customer_id=data["customer"].pk if data.get("customer") else None,
            event=data.get("event") or "",
            reason=data["reason"],
            valid_from=data["valid_from"],
            expires_on=data["expires_on"],
            actor=request.user,
            now=clock.now(),
        )
        obj.pk = waiver.pk


@admin.register(FeeUsage)
class FeeUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("rule", "account", "period_start", "used")
    list_filter = ("period_start",)
    search_fields = ("=account__account_number",)
    list_select_related = ("rule", "account")
