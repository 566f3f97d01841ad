"""Admin for standing instructions: read, create and cancel through the services.

The add form takes account numbers and an amount string as the API does; ``clean`` runs
``si_create`` in a savepoint that is rolled back (so a refusal is a form error and nothing is
saved) and ``save_model`` runs it for real. Existing instructions are read-only; the
*cancel* action calls ``si_cancel``. Runs are shown inline, read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import AuditHistoryAdmin
from accounts.models import Account
from banksim.core import clock
from banksim.core.errors import DomainError
from banksim.core.money import Money
from instructions import services
from instructions.models import StandingInstruction, StandingInstructionRun


class _Rollback(Exception):
    pass


class StandingInstructionAddForm(forms.ModelForm):
    debit_account_number = forms.CharField(max_length=12, label="Debit account")
    credit_account_number = forms.CharField(max_length=12, label="Credit account")
    amount = forms.CharField(max_length=24, help_text='e.g. "25.00", in the accounts\' currency')

    class Meta:
        model = StandingInstruction
        fields = [
            "currency",
            "frequency",
            "next_date",
            "end_date",
            "max_retries",
            "carry_forward",
            "narration",
        ]

    def _get_validation_exclusions(self) -> set[str]:
        # The service validates the instruction as a whole, with the API's codes.
        return {field.name for field in StandingInstruction._meta.fields}

    def service_kwargs(self, request: HttpRequest) -> dict[str, Any]:
        data = self.cleaned_data
        ids = dict(
            Account.objects.filter(
                account_number__in=(data["debit_account_number"], data["credit_account_number"])
            ).values_list("account_number", "pk")
        )
        return {
            "debit_account_id": ids.get(data["debit_account_number"], 0),
            "credit_account_id": ids.get(data["credit_account_number"], 0),
            "amount": Money.parse(data["amount"], data["currency"]),
            "frequency": data["frequency"],
            "next_date": data["next_date"],
            "end_date": data.get("end_date"),
            "max_retries": data["max_retries"],
            "carry_forward": data["carry_forward"],
            "narration": data.get("narration", ""),
            "actor": request.user,
            "business_date": clock.business_date(),
            "now": clock.now(),
        }


class RunInline(admin.TabularInline):
    model = StandingInstructionRun
    fields = ["due_date", "attempt", "run_on", "outcome", "txn_id", "error_code"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StandingInstruction)
class StandingInstructionAdmin(AuditHistoryAdmin):
    list_display = [
        "id",
        "debit_account",
        "credit_account",
        "amount_minor",
        "currency",
        "frequency",
        "next_date",
        "end_date",
        "status",
        "failures",
        "last_error",
    ]
    list_filter = ["status", "frequency", "currency"]
    search_fields = ["debit_account__account_number", "credit_account__account_number"]
    list_select_related = ["debit_account", "credit_account"]
    inlines = [RunInline]
    actions = ["cancel_selected"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = StandingInstructionAddForm
            form_class = super().get_form(request, obj, **kwargs)

            class RequestForm(form_class):  # type: ignore[misc, valid-type]
                def clean(self) -> dict[str, Any]:
                    cleaned = super().clean()
                    if self.errors:
                        return cleaned
                    try:
                        with transaction.atomic():
                            services.si_create(**self.service_kwargs(request))
                            raise _Rollback
                    except _Rollback:
                        pass
                    except DomainError as exc:
                        raise forms.ValidationError(f"{exc.detail} ({exc.code})") from exc
                    return cleaned

            return RequestForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [field.name for field in StandingInstruction._meta.fields]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return  # every field is read-only on an existing instruction
        created = services.si_create(**form.service_kwargs(request))
        obj.pk = created.pk
        obj.refresh_from_db()

    @admin.action(description="Cancel the selected standing instructions")
    def cancel_selected(
        self, request: HttpRequest, queryset: QuerySet[StandingInstruction]
    ) -> None:
        done = 0
        for instruction_id in queryset.values_list("pk", flat=True):
            try:
                services.si_cancel(
                    instruction_id=instruction_id,
                    reason="cancelled from the admin",
                    actor=request.user,
                    now=clock.now(),
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{instruction_id}: {exc.detail}", messages.WARNING)
        self.message_user(request, f"{done} standing instructions cancelled")
