"""Admin for CIF, static data and accounts.

The admin is a window, not a back door: customers and accounts are created and change status
only through the services (the teller API is the write path), so here they are read-only;
the freeze/unfreeze actions offered to supervisors call the same services.
Static data (calendars, holidays, branches, GL sub-heads, products) can be maintained, except
the fields other rows depend on (a SOL code is part of every account number, a product's
currency is its accounts' currency). Product terms are read-only because account balances
carry a snapshot of them (minimum balance, overdraft) that only a service may refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import ManyToManyField, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from accounts import services
from accounts.models import (
    Account,
    Branch,
    Calendar,
    Customer,
    GLSubHead,
    Holiday,
    Product,
    ProductTerms,
    StaffProfile,
)
from banksim.api.permissions import SUPERVISOR, user_roles
from banksim.core import clock
from banksim.core.errors import DomainError, InvalidInput
from banksim.core.money import Money


def format_minor(minor: int | None, currency: str) -> str:
    """Render minor units as ``"1,234.50 USD"`` for admin pages."""
    if minor is None:
        return "-"
    try:
        money = Money.from_minor(minor, currency)
    except InvalidInput:
        # A page that lists money must still load if one row has a bad currency.
        return f"{minor} minor units of {currency!r}"
    return f"{money.amount:,} {currency}"


class ReadOnlyAdminMixin:
    """View-only: no add, change or delete from the admin, for anyone."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditHistoryAdmin(SimpleHistoryAdmin):
    """History is shown, never restored.

    ``SIMPLE_HISTORY_REVERT_DISABLED`` only hides the revert button: a POST to the history
    form view would still save the old version. Refuse it here.
    """

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("history is read-only")
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- static data ----------------------------------------------------------------------


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "business_date", "day_state", "weekend_days")
    list_filter = ("day_state",)
    search_fields = ("code", "name")
    inlines = [HolidayInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Calendar | None = None) -> Any:
        # The business date and day state move only with end-of-day processing.
        return ("code", "business_date", "day_state") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "name", "calendar")
    list_filter = ("calendar",)
    search_fields = ("name",)
    date_hierarchy = "date"


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ("sol_code", "name", "calendar")
    list_filter = ("calendar",)
    search_fields = ("sol_code", "name")
    list_select_related = ("calendar",)

    def get_readonly_fields(self, request: HttpRequest, obj: Branch | None = None) -> Any:
        # The SOL code is the first four digits of every account number of the branch.
        return ("sol_code",) if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GLSubHead)
class GLSubHeadAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "category")
    list_filter = ("category",)
    search_fields = ("code", "name")

    def get_readonly_fields(self, request: HttpRequest, obj: GLSubHead | None = None) -> Any:
        # Reports and the trial balance group by code and category.
        return ("code", "category") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ProductTermsInline(ReadOnlyInline):
    model = ProductTerms
    fields = (
        "effective_from",
        "min_balance",
        "overdraft_allowed",
        "overdraft_limit",
        "credit_interest_rate",
        "debit_interest_rate",
        "accrual_basis",
        "dormancy_days",
    )
    readonly_fields = fields

    @admin.display(description="minimum balance")
    def min_balance(self, obj: ProductTerms) -> str:
        return format_minor(obj.min_balance_minor, obj.product.currency)

    @admin.display(description="overdraft limit")
    def overdraft_limit(self, obj: ProductTerms) -> str:
        return format_minor(obj.overdraft_limit_minor, obj.product.currency)


@admin.register(Product)
class ProductAdmin(AuditHistoryAdmin):
    list_display = ("code", "name", "scheme_type", "currency", "gl_subhead", "is_active")
    list_filter = ("scheme_type", "currency", "is_active", "gl_subhead")
    search_fields = ("code", "name")
    list_select_related = ("gl_subhead",)
    inlines = [ProductTermsInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Product | None = None) -> Any:
        # Accounts already opened carry this product's currency and are booked under its GL.
        return ("code", "scheme_type", "currency", "gl_subhead") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProductTerms)
class ProductTermsAdmin(ReadOnlyAdminMixin, AuditHistoryAdmin):
    list_display = (
        "product",
        "effective_from",
        "min_balance",
        "overdraft_allowed",
        "overdraft_limit",
        "credit_interest_rate",
        "debit_interest_rate",
        "accrual_basis",
        "dormancy_days",
    )
    list_filter = ("product__scheme_type", "product__currency", "accrual_basis")
    search_fields = ("product__code", "product__name")
    list_select_related = ("product",)
    date_hierarchy = "effective_from"

    @admin.display(description="minimum balance", ordering="min_balance_minor")
    def min_balance(self, obj: ProductTerms) -> str:
        return format_minor(obj.min_balance_minor, obj.product.currency)

    @admin.display(description="overdraft limit", ordering="overdraft_limit_minor")
    def overdraft_limit(self, obj: ProductTerms) -> str:
        return format_minor(obj.overdraft_limit_minor, obj.product.currency)


# --- CIF and accounts -----------------------------------------------------------------


class CustomerAccountInline(ReadOnlyInline):
    model = Account
    fk_name = "customer"
    fields = ("account_number", "product", "branch", "currency", "status", "opened_on")
    readonly_fields = fields


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdminMixin, AuditHistoryAdmin):
    """Read-only: customers are created and changed through the API (the services)."""

    list_display = (
        "cif_id",
        "display_name",
        "customer_type",
        "national_id_type",
        "kyc_status",
        "risk_grade",
        "segment",
        "home_branch",
        "created_at",
    )
    list_filter = ("customer_type", "kyc_status", "risk_grade", "segment", "home_branch")
    search_fields = (
        "=cif_id",
        "first_name",
        "last_name",
        "legal_name",
        "=national_id",
        "email",
        "phone",
    )
    list_select_related = ("home_branch",)
    date_hierarchy = "created_at"
    inlines = [CustomerAccountInline]


class FreezeForm(forms.Form):
    freeze_type = forms.ChoiceField(choices=Account.FreezeType.choices)
    reason = forms.CharField(max_length=200)


class UnfreezeForm(forms.Form):
    reason = forms.CharField(max_length=200)


StatusChange = Callable[[Account, dict[str, Any], datetime], Account]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, AuditHistoryAdmin):
    """Read-only: accounts open and close through the services, money moves only through
    ledger postings. Supervisors can freeze and unfreeze here; each goes through the service."""

    list_display = (
        "account_number",
        "title",
        "kind",
        "customer",
        "product",
        "branch",
        "status",
        "freeze_type",
        "ledger_balance",
        "opened_on",
    )
    list_filter = ("kind", "status", "freeze_type", "currency", "office_role", "product", "branch")
    search_fields = ("=account_number", "title", "=customer__cif_id")
    list_select_related = ("customer", "product", "branch", "balance")
    date_hierarchy = "opened_on"
    actions = ["freeze", "unfreeze"]

    @admin.display(description="ledger balance")
    def ledger_balance(self, obj: Account) -> str:
        from ledger.selectors import balance_snapshot

        balance = getattr(obj, "balance", None)
        if balance is None:
            return format_minor(None, obj.currency)
        if balance.is_office:  # the row may not hold the last seconds of GL movement yet
            return format_minor(balance_snapshot(account_id=obj.pk).ledger.minor, obj.currency)
        return format_minor(balance.ledger_minor, obj.currency)

    def has_status_permission(self, request: HttpRequest) -> bool:
        # The API's rule: only supervisors freeze and unfreeze.
        return bool(request.user.is_superuser or SUPERVISOR in user_roles(request.user))

    @admin.action(description="Freeze selected accounts", permissions=["status"])
    def freeze(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse | None:
        return self._status_change(
            request,
            queryset,
            action="freeze",
            title="Freeze accounts",
            form_class=FreezeForm,
            change=lambda account, data, now: services.account_freeze(
                account_id=account.pk,
                freeze_type=data["freeze_type"],
                reason=data["reason"],
                actor=request.user,
                now=now,
            ),
        )

    @admin.action(description="Unfreeze selected accounts", permissions=["status"])
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse | None:
        return self._status_change(
            request,
            queryset,
            action="unfreeze",
            title="Unfreeze accounts",
            form_class=UnfreezeForm,
            change=lambda account, data, now: services.account_unfreeze(
                account_id=account.pk, reason=data["reason"], actor=request.user, now=now
            ),
        )

    def _status_change(
        self,
        request: HttpRequest,
        queryset: QuerySet[Account],
        *,
        action: str,
        title: str,
        form_class: type[forms.Form],
        change: StatusChange,
    ) -> HttpResponse | None:
        """Ask for the reason (and freeze type), then make one service call per account."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/accounts/account/status_change.html",
                {
                    **self.admin_site.each_context(request),
                    "title": title,
                    "opts": self.model._meta,
                    "queryset": queryset,
                    "form": form,
                    "action": action,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        now = clock.now()
        changed, refused = [], []
        for account in queryset.order_by("pk"):
            if account.kind != Account.Kind.CUSTOMER:
                refused.append(f"{account.account_number}: office accounts are run by operations")
                continue
            # The admin has no problem+json handler: a refusal becomes a message for that
            # account, and the others still go through (each service call is atomic).
            try:
                change(account, form.cleaned_data, now)
            except DomainError as exc:
                refused.append(f"{account.account_number}: {exc.detail}")
            else:
                changed.append(account.account_number)
        if changed:
            self.message_user(request, f"{title}: done for {', '.join(changed)}", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{title}: refused {'; '.join(refused)}", messages.ERROR)
        return None


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "branch")
    list_filter = ("branch",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    list_select_related = ("user", "branch")
    autocomplete_fields = ("user",)

    def formfield_for_manytomany(
        self, db_field: ManyToManyField, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField | None:
        if db_field.name == "cash_accounts":
            # A till is a teller-cash office account; nothing else belongs here.
            kwargs["queryset"] = Account.objects.filter(
                kind=Account.Kind.OFFICE, office_role=Account.OfficeRole.TELLER_CASH
            ).select_related("branch")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaffProfile]:
        return super().get_queryset(request).select_related("user", "branch")
