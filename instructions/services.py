"""Writes for standing instructions: create, cancel, and run the due ones (the EOD step's work).

``si_run_due`` is idempotent per business date: each attempt claims its
``StandingInstructionRun`` row (unique on instruction, due date, attempt) with
``INSERT ... ON CONFLICT DO NOTHING`` in the transaction that posts the transfer and moves the
schedule, so a re-run, or a resume after a kill, finds the work done and posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q

from accounts.models import Account
from audit.services import audit_record
from banksim.core.errors import DomainError
from banksim.core.money import Money
from instructions.errors import (
    InstructionAccountNotEligible,
    InstructionAccountNotFound,
    InstructionAmountInvalid,
    InstructionCurrencyMismatch,
    InstructionDateInvalid,
    InstructionNotActive,
    InstructionNotFound,
    InstructionSameAccount,
)
from instructions.models import StandingInstruction, StandingInstructionRun
from instructions.schedule import next_occurrence
from ledger.models import Journal
from ledger.services import Movement, movement_post
from limits.errors import DailyLimitExceeded
from limits.services import limit_breach_record

SI = StandingInstruction
Outcome = StandingInstructionRun.Outcome
BATCH_SIZE = 500
# A daily instruction far behind its schedule catches up at most this many occurrences per EOD.
MAX_CATCH_UP = 366


def si_create(
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: Money,
    frequency: str,
    next_date: date,
    end_date: date | None,
    max_retries: int,
    carry_forward: bool,
    narration: str,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
) -> StandingInstruction:
    """Create an active standing instruction between two customer accounts.

    It moves no money now; the first occurrence posts at the EOD of ``next_date``.

    :raises InstructionSameAccount: if debit and credit account are the same
    :raises InstructionAccountNotFound: if an account does not exist
    :raises InstructionAccountNotEligible: for an office (GL) or closed account
    :raises InstructionCurrencyMismatch: if the amount is not in both accounts' currency
    :raises InstructionAmountInvalid: if the amount is not positive
    :raises InstructionDateInvalid: if ``next_date`` is before the business date or
        ``end_date`` before ``next_date``
    """
    if debit_account_id == credit_account_id:
        raise InstructionSameAccount(
            "debit and credit account are the same",
            errors={"credit_account": ["must differ from the debit account"]},
        )
    if amount.minor <= 0:
        raise InstructionAmountInvalid(
            "the amount must be positive", errors={"amount": ["must be greater than zero"]}
        )
    if next_date < business_date:
        raise InstructionDateInvalid(
            f"the first occurrence cannot be before the business date {business_date}",
            errors={"next_date": [f"must be on or after {business_date}"]},
        )
    if end_date is not None and end_date < next_date:
        raise InstructionDateInvalid(
            "the end date is before the first occurrence",
            errors={"end_date": ["must be on or after next_date"]},
        )
    if frequency not in SI.Frequency.values:
        raise InstructionDateInvalid(
            f"unknown frequency {frequency!r}", errors={"frequency": ["not a valid choice"]}
        )
    with transaction.atomic():
        accounts = {
            a.pk: a for a in Account.objects.filter(pk__in=(debit_account_id, credit_account_id))
        }
        if len(accounts) != 2:
            raise InstructionAccountNotFound("an account of this instruction does not exist")
        for role, account in (
            ("debit_account", accounts[debit_account_id]),
            ("credit_account", accounts[credit_account_id]),
        ):
            if account.kind != Account.Kind.CUSTOMER or account.status == Account.Status.CLOSED:
                raise InstructionAccountNotEligible(
                    f"account {account.account_number} is not an open customer account",
                    errors={role: ["must be an open customer account"]},
                )
            if account.currency != amount.currency:
                raise InstructionCurrencyMismatch(
                    f"account {account.account_number} is in {account.currency}, "
                    f"not {amount.currency}",
                    errors={
                        "currency": [f"account {account.account_number} is {account.currency}"]
                    },
                )
        instruction = SI(
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount_minor=amount.minor,
            currency=amount.currency,
            frequency=frequency,
            next_date=next_date,
            anchor_day=next_date.day,
            end_date=end_date,
            max_retries=max_retries,
            carry_forward=carry_forward,
            narration=narration,
            created_at=now,
            created_by=actor,
        )
        instruction._change_reason = "standing instruction created"  # type: ignore[attr-defined]
        instruction.save()
        audit_record(
            action="standing_instruction.created",
            object_type="standing_instruction",
            object_id=instruction.pk,
            details={
                "debit_account": accounts[debit_account_id].account_number,
                "credit_account": accounts[credit_account_id].account_number,
                "amount": amount.to_wire(),
                "currency": amount.currency,
                "frequency": frequency,
                "next_date": next_date.isoformat(),
            },
            actor=actor,
        )
    return instruction


def si_cancel(
    *, instruction_id: int, reason: str, actor: AbstractBaseUser | None, now: datetime
) -> StandingInstruction:
    """Cancel an active instruction; occurrences not yet posted never will be.

    Takes the instruction's row lock, so it waits for an EOD attempt in flight on it.

    :raises InstructionNotFound: / :raises InstructionNotActive: if completed, failed or
        already cancelled
    """
    with transaction.atomic():
        instruction = SI.objects.select_for_update().filter(pk=instruction_id).first()
        if instruction is None:
            raise InstructionNotFound(f"no standing instruction {instruction_id}")
        if instruction.status != SI.Status.ACTIVE:
            raise InstructionNotActive(
                f"standing instruction {instruction_id} is {instruction.status}"
            )
        instruction.status = SI.Status.CANCELLED
        instruction._change_reason = f"cancelled: {reason}"[:100]  # type: ignore[attr-defined]
        instruction.save(update_fields=["status"])
        audit_record(
            action="standing_instruction.cancelled",
            object_type="standing_instruction",
            object_id=instruction.pk,
            details={"reason": reason},
            actor=actor,
        )
    return instruction


# --- the EOD step's work -----------------------------------------------------------------------


@dataclass
class RunTally:
    due: int = 0
    posted: int = 0
    entered: int = 0
    retry: int = 0
    failed: int = 0
    completed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def as_summary(self) -> dict[str, object]:
        return {
            "due": self.due,
            "posted": self.posted,
            "entered": self.entered,
            "retry": self.retry,
            "failed": self.failed,
            "completed": self.completed,
            "errors": dict(sorted(self.errors.items())),
        }


def _due(business_date: date) -> Q:
    return Q(status=SI.Status.ACTIVE, next_date__lte=business_date) & (
        Q(retry_not_before__isnull=True) | Q(retry_not_before__lte=business_date)
    )


_CLAIM_SQL = """
INSERT INTO instructions_standinginstructionrun
       (instruction_id, due_date, attempt, run_on, outcome, txn_id, error_code)
VALUES (%s, %s, %s, %s, %s, '', '')
ON CONFLICT (instruction_id, due_date, attempt) DO NOTHING
RETURNING id
"""


def _claim(*, instruction_id: int, due_date: date, attempt: int, run_on: date) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [instruction_id, due_date, attempt, run_on, Outcome.FAILED])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _attempt(
    *, instruction_id: int, business_date: date, now: datetime, tally: RunTally
) -> tuple[bool, DailyLimitExceeded | None]:
    """Make one attempt at the instruction's current occurrence in its own transaction.

    Return (another occurrence is due today, a limit refusal whose event must be recorded).
    """
    with transaction.atomic(durable=True):
        # The row lock serialises this attempt with si_cancel and with a concurrent EOD worker.
        si = SI.objects.select_for_update().filter(_due(business_date), pk=instruction_id).first()
        if si is None:
            return False, None
        if si.end_date is not None and si.next_date > si.end_date:
            si.status = SI.Status.COMPLETED
            si.save(update_fields=["status"])
            tally.completed += 1
            return False, None
        due_date, attempt = si.next_date, si.failures + 1
        run_id = _claim(
            instruction_id=si.pk, due_date=due_date, attempt=attempt, run_on=business_date
        )
        if run_id is None:  # committed by an earlier run; its effects are already here
            return False, None
        movement = Movement(
            txn_type=Journal.TxnType.TRANSFER,
            debit_account_id=si.debit_account_id,
            credit_account_id=si.credit_account_id,
            amount=Money.from_minor(si.amount_minor, si.currency),
            channel=Journal.Channel.BATCH,
            narration=si.narration or f"Standing instruction {si.pk}",
            details={
                "eod": {
                    "date": business_date.isoformat(),
                    "step": "standing_instructions",
                    "key": f"si:{si.pk}:{due_date.isoformat()}:{attempt}",
                }
            },
        )
        limit_error: DailyLimitExceeded | None = None
        try:
            # A savepoint: a refusal undoes the posting only, the claim and the failure stay.
            with transaction.atomic():
                result = movement_post(
                    movement=movement, actor=None, business_date=business_date, now=now
                )
        except DomainError as exc:
            if isinstance(exc, DailyLimitExceeded):
                limit_error = exc
            si.failures = attempt
            si.last_error = exc.code
            tally.errors[exc.code] = tally.errors.get(exc.code, 0) + 1
            if si.carry_forward and attempt <= si.max_retries:
                outcome = Outcome.RETRY
                # Retries wait for a later EOD; the step only runs on business days.
                si.retry_not_before = business_date + timedelta(days=1)
                tally.retry += 1
            else:
                outcome = Outcome.FAILED
                si.status = SI.Status.FAILED
                tally.failed += 1
            StandingInstructionRun.objects.filter(pk=run_id).update(
                outcome=outcome, error_code=exc.code
            )
            si.save(update_fields=["failures", "last_error", "retry_not_before", "status"])
            return False, limit_error
        outcome = Outcome.POSTED if result.posted else Outcome.ENTERED
        StandingInstructionRun.objects.filter(pk=run_id).update(
            outcome=outcome, txn_id=result.journal.txn_id
        )
        if result.posted:
            tally.posted += 1
        else:
            tally.entered += 1
        si.next_date = next_occurrence(
            frequency=si.frequency, current=si.next_date, anchor_day=si.anchor_day
        )
        si.failures = 0
        si.retry_not_before = None
        si.last_error = ""
        if si.end_date is not None and si.next_date > si.end_date:
            si.status = SI.Status.COMPLETED
            tally.completed += 1
        si.save(update_fields=["next_date", "failures", "retry_not_before", "last_error", "status"])
        return si.status == SI.Status.ACTIVE and si.next_date <= business_date, None


def si_run_due(
    *,
    business_date: date,
    now: datetime,
    progress: Callable[[int, int], None],
    batch_size: int = BATCH_SIZE,
) -> RunTally:
    """Post every standing instruction due on or before ``business_date``, once.

    Each attempt is its own transaction (claim, posting with fees and limits on the batch
    channel, schedule update). An occurrence refused by the ledger or the limits is retried at
    the next EOD while ``carry_forward`` holds and retries are left, else the instruction
    fails. An instruction past its end date completes. Safe to run again for the same date.
    The caller must not hold a transaction.
    """
    tally = RunTally()
    total = SI.objects.filter(_due(business_date)).count()
    tally.due = total
    progress(0, total)
    done, last_id = 0, 0
    while True:
        ids = list(
            SI.objects.filter(_due(business_date), pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        for instruction_id in ids:
            for _ in range(MAX_CATCH_UP):
                again, limit_error = _attempt(
                    instruction_id=instruction_id, business_date=business_date, now=now, tally=tally
                )
                if limit_error is not None:
                    limit_breach_record(error=limit_error, now=now)
                if not again:
                    break
        last_id = ids[-1]
        done += len(ids)
        progress(min(done, total), max(total, done))
    return tally
