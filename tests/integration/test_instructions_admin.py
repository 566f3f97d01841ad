"""The standing-instruction admin writes through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from instructions.models import StandingInstruction

pytestmark = pytest.mark.django_db

ADD = reverse("admin:instructions_standinginstruction_add")
LIST = reverse("admin:instructions_standinginstruction_changelist")


@pytest.fixture
def browser(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-not-123"))
    return client


def form_data(payer, payee, **fields) -> dict[str, str]:
    data = {
        "debit_account_number": payer.account_number,
        "credit_account_number": payee.account_number,
        "amount": "12.50",
        "currency": "USD",
        "frequency": "weekly",
        "next_date": "2026-12-01",
        "end_date": "",
        "max_retries": "1",
        "narration": "gym",
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return data


class TestStandingInstructionAdmin:
    def test_an_instruction_added_in_the_admin_goes_through_the_service(
        self, bank, open_account, browser
    ):
        payer, payee = open_account(), open_account()

        response = browser.post(ADD, form_data(payer, payee))

        assert response.status_code == 302, response.content.decode()[:3000]
        instruction = StandingInstruction.objects.get(debit_account=payer)
        assert (instruction.amount_minor, instruction.anchor_day) == (1250, 1)
        assert instruction.created_by.username == "root"

    def test_a_refused_instruction_is_a_form_error_and_nothing_is_saved(
        self, bank, open_account, browser
    ):
        payer, payee = open_account(), open_account()

        response = browser.post(ADD, form_data(payer, payee, next_date="2026-11-01"))

        assert response.status_code == 200
        assert "instructions.date_invalid" in response.content.decode()
        assert not StandingInstruction.objects.filter(debit_account=payer).exists()

    def test_the_cancel_action_cancels_through_the_service(self, bank, open_account, browser):
        payer, payee = open_account(), open_account()
        browser.post(ADD, form_data(payer, payee))
        instruction = StandingInstruction.objects.get(debit_account=payer)

        browser.post(LIST, {"action": "cancel_selected", "_selected_action": [instruction.pk]})

        instruction.refresh_from_db()
        assert instruction.status == "cancelled"
