"""Admin for the ledger: a read-only window on journals, entries, balances, holds and keys.

Money moves only through ledger services (postings, reversals, holds); no admin page can add,
change or delete a journal, an entry, a balance, a hold or an idempotency record, even for a
superuser. Amounts are shown as formatted money, never as raw minor units. Approval
thresholds are configuration, not money, so they are editable (with history).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import AuditHistoryAdmin, ReadOnlyAdminMixin, ReadOnlyInline, format_minor
from banksim.core.money import CURRENCY_EXPONENTS
from ledger.models import (
    AccountBalance,
    ApprovalThreshold,
    Entry,
    Hold,
    IdempotencyRecord,
    Journal,
    OfficeBalanceDelta,
)
from ledger.selectors import balances_live


class EntryInline(ReadOnlyInline):
    model = Entry
    fields = ("account", "side", "amount", "purpose", "balance_after", "business_date")
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="amount")
    def amount(self, obj: Entry) -> str:
        return format_minor(obj.amount_minor, obj.currency)

    @admin.display(description="balance after")
    def balance_after(self, obj: Entry) -> str:
        return format_minor(obj.balance_after_minor, obj.currency)


@admin.register(Journal)
class JournalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "txn_id",
        "txn_type",
        "channel",
        "status",
        "business_date",
        "entered_at",
        "posted_at",
        "maker",
        "checker",
        "reversal_of",
    )
    list_filter = ("status", "txn_type", "channel", "business_date")
    search_fields = ("=txn_id", "narration")
    list_select_related = ("maker", "checker", "reversal_of")
    date_hierarchy = "business_date"
    inlines = [EntryInline]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "journal",
        "account",
        "side",
        "amount",
        "balance_after",
        "purpose",
        "business_date",
    )
    list_filter = ("side", "currency", "purpose", "business_date")
    search_fields = ("=journal__txn_id", "=account__account_number")
    list_select_related = ("journal", "account")
    date_hierarchy = "business_date"

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj: Entry) -> str:
        return format_minor(obj.amount_minor, obj.currency)

    @admin.display(description="balance after")
    def balance_after(self, obj: Entry) -> str:
        return format_minor(obj.balance_after_minor, obj.currency)


@admin.register(AccountBalance)
class AccountBalanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "account",
        "ledger",
        "held",
        "available",
        "min_balance",
        "overdraft_limit",
        "is_office",
    )
    list_filter = ("currency", "is_office")
    search_fields = ("=account__account_number", "account__title")
    list_select_related = ("account",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccountBalance]:
        # Office rows: the row plus the deltas not yet folded into it, like every reader.
        return balances_live().select_related("account")

    @admin.display(description="ledger balance", ordering="live_minor")
    def ledger(self, obj: AccountBalance) -> str:
        return format_minor(obj.live_minor, obj.currency)  # type: ignore[attr-defined]

    @admin.display(description="held", ordering="held_minor")
    def held(self, obj: AccountBalance) -> str:
        return format_minor(obj.held_minor, obj.currency)

    @admin.display(description="available")
    def available(self, obj: AccountBalance) -> str:
        # Same rule as ledger.selectors.balance_snapshot.
        live = obj.live_minor  # type: ignore[attr-defined]
        return format_minor(live - obj.held_minor + obj.overdraft_limit_minor, obj.currency)

    @admin.display(description="minimum balance")
    def min_balance(self, obj: AccountBalance) -> str:
        return format_minor(obj.min_balance_minor, obj.currency)

    @admin.display(description="overdraft limit")
    def overdraft_limit(self, obj: AccountBalance) -> str:
        return format_minor(obj.overdraft_limit_minor, obj.currency)


@admin.register(OfficeBalanceDelta)
class OfficeBalanceDeltaAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Office-balance movements waiting for the fold (normally a few seconds' worth)."""

    list_display = ("id", "account_id", "delta_minor")
    search_fields = ("=account_id",)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdminMixin, AuditHistoryAdmin):
    list_display = (
        "id",
        "account",
        "amount",
        "status",
        "reason",
        "placed_on",
        "expires_on",
        "journal",
    )
    list_filter = ("status", "currency", "placed_on")
    search_fields = ("=account__account_number", "reason", "=journal__txn_id")
    list_select_related = ("account", "journal")
    date_hierarchy = "placed_on"

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj: Hold) -> str:
        return format_minor(obj.amount_minor, obj.currency)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("client_id", "key", "method", "path", "response_status", "created_at")
    list_filter = ("method", "response_status")
    search_fields = ("=client_id", "=key", "path")
    date_hierarchy = "created_at"
    exclude = ("response_body",)


class ApprovalThresholdForm(forms.ModelForm):
    class Meta:
        model = ApprovalThreshold
        fields = ("currency", "product", "channel", "amount_minor")

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"]
        if currency not in CURRENCY_EXPONENTS:
            raise forms.ValidationError("not a supported ISO 4217 code (upper case)")
        return currency


@admin.register(ApprovalThreshold)
class ApprovalThresholdAdmin(AuditHistoryAdmin):
    form = ApprovalThresholdForm
    list_display = ("currency", "product", "channel", "threshold")
    list_filter = ("currency", "channel")
    search_fields = ("currency", "product__code")
    list_select_related = ("product",)

    @admin.display(description="threshold", ordering="amount_minor")
    def threshold(self, obj: ApprovalThreshold) -> str:
        return format_minor(obj.amount_minor, obj.currency)
