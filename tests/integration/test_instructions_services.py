from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import Account
from banksim.core.errors import DomainError
from banksim.core.money import Money
from instructions.models import StandingInstruction, StandingInstructionRun
from instructions.services import si_cancel, si_create, si_run_due
from ledger.models import Entry
from ledger.selectors import balance_snapshot

pytestmark = pytest.mark.django_db


def _balance(account: Account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


def _run(on: date) -> object:
    return si_run_due(business_date=on, now=timezone.now(), progress=lambda done, total: None)


@pytest.fixture
def make_instruction(bank: object) -> Callable[..., StandingInstruction]:
    def _make(payer: Account, payee: Account, amount: str = "10.00", **kwargs: object):
        fields: dict[str, object] = {
            "frequency": "monthly",
            "next_date": bank.business_date,  # type: ignore[attr-defined]
            "end_date": None,
            "max_retries": 0,
            "carry_forward": False,
            "narration": "rent",
            **kwargs,
        }
        return si_create(
            debit_account_id=payer.pk,
            credit_account_id=payee.pk,
            amount=Money.parse(amount, payer.currency),
            actor=None,
            business_date=bank.business_date,  # type: ignore[attr-defined]
            now=timezone.now(),
            **fields,  # type: ignore[arg-type]
        )

    return _make


class TestRunDue:
    def test_a_due_instruction_posts_and_moves_to_its_next_date(
        self, bank, funded_account, open_account, make_instruction
    ) -> None:
        payer = funded_account("100.00")
        payee = open_account()
        instruction = make_instruction(payer, payee, "10.00")

        tally = _run(bank.business_date)

        instruction.refresh_from_db()
        run = StandingInstructionRun.objects.get(instruction=instruction)
        assert (_balance(payer), _balance(payee)) == ("90.00", "10.00")
        assert instruction.next_date == date(2026, 12, 30)
        assert (run.outcome, run.attempt, run.due_date) == ("posted", 1, bank.business_date)
        assert run.txn_id.startswith("T")
        assert tally.posted == 1

    def test_running_the_same_date_again_posts_nothing_twice(
        self, bank, funded_account, open_account, make_instruction
    ) -> None:
        payer = funded_account("100.00")
        payee = open_account()
        instruction = make_instruction(payer, payee, "10.00", frequency="daily")
        _run(bank.business_date)

        second = _run(bank.business_date)

        assert second.due == 0
        assert _balance(payee) == "10.00"
        assert StandingInstructionRun.objects.filter(instruction=instruction).count() == 1
        assert Entry.objects.filter(account_id=payee.pk).count() == 1

    def test_a_shortfall_is_carried_forward_and_posts_once_funds_arrive(
        self, bank, open_account, make_instruction, post_movement
    ) -> None:
        payer = open_account()
        payee = open_account()
        instruction = make_instruction(payer, payee, "10.00", max_retries=2, carry_forward=True)
        _run(bank.business_date)
        _run(bank.business_date)  # the same EOD again must not spend a retry
        post_movement("cash_deposit", bank.office_account("teller_cash"), payer, "50.00")

        _run(bank.business_date + timedelta(days=1))

        instruction.refresh_from_db()
        runs = list(
            StandingInstructionRun.objects.filter(instruction=instruction)
            .order_by("attempt")
            .values_list("attempt", "outcome", "error_code")
        )
        assert runs == [(1, "retry", "ledger.insufficient_funds"), (2, "posted", "")]
        assert (_balance(payer), _balance(payee)) == ("40.00", "10.00")
        assert instruction.status == "active"
        assert instruction.next_date == date(2026, 12, 30)
        assert instruction.failures == 0

    def test_an_instruction_fails_once_its_retries_are_spent(
        self, bank, open_account, make_instruction
    ) -> None:
        payer = open_account()
        payee = open_account()
        instruction = make_instruction(payer, payee, "10.00", max_retries=1, carry_forward=True)

        for day in range(3):
            _run(bank.business_date + timedelta(days=day))

        instruction.refresh_from_db()
        outcomes = list(
            StandingInstructionRun.objects.filter(instruction=instruction)
            .order_by("attempt")
            .values_list("outcome", flat=True)
        )
        assert outcomes == ["retry", "failed"]
        assert instruction.status == "failed"
        assert instruction.last_error == "ledger.insufficient_funds"
        assert _balance(payee) == "0.00"

    def test_without_carry_forward_the_first_refusal_fails_the_instruction(
        self, bank, open_account, make_instruction
    ) -> None:
        payer = open_account()
        payee = open_account()
        instruction = make_instruction(payer, payee, "10.00", max_retries=3)

        _run(bank.business_date)

        instruction.refresh_from_db()
        assert instruction.status == "failed"

    def test_the_last_occurrence_completes_the_instruction(
        self, bank, funded_account, open_account, make_instruction
    ) -> None:
        payer = funded_account("100.00")
        payee = open_account()
        instruction = make_instruction(
            payer, payee, "10.00", frequency="weekly", end_date=bank.business_date
        )

        _run(bank.business_date)

        instruction.refresh_from_db()
        assert instruction.status == "completed"
        assert _balance(payee) == "10.00"

    def test_a_daily_instruction_behind_schedule_catches_up(
        self, bank, funded_account, open_account, make_instruction
    ) -> None:
        payer = funded_account("100.00")
        payee = open_account()
        instruction = make_instruction(payer, payee, "1.00", frequency="daily")

        _run(bank.business_date + timedelta(days=2))

        instruction.refresh_from_db()
        assert _balance(payee) == "3.00"
        assert instruction.next_date == bank.business_date + timedelta(days=3)

    def test_a_cancelled_instruction_is_not_run(
        self, bank, funded_account, open_account, make_instruction
    ) -> None:
        payer = funded_account("100.00")
        payee = open_account()
        instruction = make_instruction(payer, payee, "10.00")
        si_cancel(
            instruction_id=instruction.pk, reason="customer asked", actor=None, now=timezone.now()
        )

        _run(bank.business_date)

        assert _balance(payee) == "0.00"


class TestCreate:
    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"same": True}, "instructions.same_account"),
            ({"amount": "0.00"}, "instructions.amount_invalid"),
            ({"next_date": date(2026, 11, 29)}, "instructions.date_invalid"),
            (
                {"end_date": date(2026, 12, 1), "next_date": date(2026, 12, 2)},
                "instructions.date_invalid",
            ),
            ({"payee_product": "SBA-JPY"}, "instructions.currency_mismatch"),
            ({"office_payee": True}, "instructions.account_not_eligible"),
        ],
    )
    def test_bad_instructions_are_refused_and_nothing_is_saved(
        self, bank, open_account, change: dict[str, object], code: str
    ) -> None:
        payer = open_account()
        payee = open_account(str(change.get("payee_product", "SBA-USD")))
        if change.get("same"):
            payee = payer
        if change.get("office_payee"):
            payee = bank.office_account("fee_income")

        with pytest.raises(DomainError) as caught:
            si_create(
                debit_account_id=payer.pk,
                credit_account_id=payee.pk,
                amount=Money.parse(str(change.get("amount", "5.00")), "USD"),
                frequency="monthly",
                next_date=change.get("next_date", bank.business_date),  # type: ignore[arg-type]
                end_date=change.get("end_date"),  # type: ignore[arg-type]
                max_retries=0,
                carry_forward=False,
                narration="",
                actor=None,
                business_date=bank.business_date,
                now=timezone.now(),
            )

        assert caught.value.code == code
        assert not StandingInstruction.objects.filter(debit_account=payer).exists()


class TestStep:
    def test_the_eod_step_reports_progress_and_a_summary(
        self, bank, funded_account, open_account, make_instruction
    ) -> None:
        from eod.steps import StepContext
        from instructions.steps import run_due

        payer = funded_account("100.00")
        make_instruction(payer, open_account(), "10.00")
        make_instruction(payer, open_account(), "500.00")
        progress: list[tuple[int, int]] = []

        outcome = run_due(
            StepContext(
                business_date=bank.business_date,
                calendar_code="MAIN",
                now=timezone.now(),
                progress=lambda done, total: progress.append((done, total)),
            )
        )

        assert outcome.rows == 2
        assert outcome.summary["posted"] == 1
        assert outcome.summary["failed"] == 1
        assert outcome.summary["errors"] == {"ledger.insufficient_funds": 1}
        assert progress == [(0, 2), (2, 2)]
