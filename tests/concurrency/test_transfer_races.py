"""Races against real PostgreSQL: many sessions moving the same few accounts at once.

Each worker thread has its own connection and every service call commits, so these tests
see what production sees: row locks, lock order, deferred constraint triggers at commit.
What they prove: no deadlock (the posting function locks balance rows in ascending account
id for every writer), no lost update (each account's running balance chains entry by entry),
no double posting (reversal and approval are decided under the journal's row lock), and no
balance ever crosses its floor however the transactions interleave.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.db.models import Sum
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Account, ProductTerms
from banksim.core.errors import DomainError
from banksim.core.money import Money
from ledger import services
from ledger.errors import AlreadyReversed, InsufficientFunds, JournalNotPending
from ledger.models import (
    ApprovalThreshold,
    Entry,
    Hold,
    Journal,
    OfficeBalanceDelta,
)
from ledger.selectors import balance_snapshot, balances_live, ledger_violations
from tests.concurrency.conftest import is_deadlock, run_together
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SAVINGS_MIN_MINOR = 5_00
OVERDRAFT_MINOR = 100_00


def usd(minor: int) -> Money:
    return Money.from_minor(minor, "USD")


def wire(account: Account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


def move(bank, txn_type: str, debit: int, credit: int, minor: int, actor=None):
    return services.movement_execute(
        movement=services.Movement(
            txn_type=txn_type,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=usd(minor),
            channel="teller",
        ),
        actor=actor,
        business_date=bank.business_date,
        now=timezone.now(),
    )


def reverse(bank, journal_id: int, actor):
    return services.journal_reverse(
        journal_id=journal_id,
        reason="race",
        actor=actor,
        channel="teller",
        business_date=bank.business_date,
        now=timezone.now(),
    )


def running_balance_breaks(account_ids: list[int]) -> list[tuple[int, int]]:
    """Entries whose balance_after does not follow from the previous entry of the account.

    Entries of one account are inserted while its balance row is locked, so in id order each
    must move the running balance by exactly its own amount; a lost update breaks the chain.
    """
    breaks = []
    for account_id in account_ids:
        running = 0
        for entry_id, side, amount, after in (
            Entry.objects.filter(account_id=account_id)
            .order_by("id")
            .values_list("id", "side", "amount_minor", "balance_after_minor")
        ):
            running += amount if side == "C" else -amount
            if after != running:
                breaks.append((account_id, entry_id))
    return breaks


class TestTransferStorm:
    WORKERS = 8
    OPERATIONS = 40
    WEIGHTS = {
        "transfer": 50,
        "cash_deposit": 8,
        "cash_withdrawal": 8,
        "reverse": 10,
        "hold_place": 8,
        "hold_release": 8,
        "freeze_briefly": 6,
        "enter_for_approval": 6,
        "approve_or_reject": 6,
    }

    def test_random_traffic_on_few_accounts_keeps_every_invariant_and_never_deadlocks(
        self, bank, open_account, post_movement, supervisor, teller
    ):
        ProductTerms.objects.filter(product=bank.products["SBA-USD"]).update(
            min_balance_minor=SAVINGS_MIN_MINOR
        )
        ProductTerms.objects.filter(product=bank.products["CAA-USD"]).update(
            overdraft_limit_minor=OVERDRAFT_MINOR
        )
        ApprovalThreshold.objects.create(currency="USD", channel="api", amount_minor=20_00)
        savers = [open_account("SBA-USD") for _ in range(5)]
        current = open_account("CAA-USD")
        cash = bank.office_account("teller_cash")
        for saver in savers:
            post_movement("cash_deposit", cash, saver, "100.00")
        customers = [a.pk for a in [*savers, current]]
        journals: list[int] = []  # posted by any worker; list.append is thread-safe
        holds: list[int] = []
        entered: list[int] = []
        names, weights = zip(*self.WEIGHTS.items(), strict=True)

        def operate(name: str, rng: random.Random) -> None:
            if name == "transfer":
                payer, payee = rng.sample(customers, 2)
                journals.append(
                    move(bank, "transfer", payer, payee, rng.randint(1, 60_00)).journal.pk
                )
            elif name == "cash_deposit":
                journals.append(
                    move(
                        bank, "cash_deposit", cash.pk, rng.choice(customers), rng.randint(1, 30_00)
                    ).journal.pk
                )
            elif name == "cash_withdrawal":
                journals.append(
                    move(
                        bank,
                        "cash_withdrawal",
                        rng.choice(customers),
                        cash.pk,
                        rng.randint(1, 50_00),
                    ).journal.pk
                )
            elif name == "reverse" and journals:
                journals.append(reverse(bank, rng.choice(journals), supervisor).pk)
            elif name == "hold_place":
                hold = services.hold_place(
                    account_id=rng.choice(customers),
                    amount=usd(rng.randint(1, 30_00)),
                    reason="card authorisation",
                    expires_on=None,
                    actor=teller,
                    business_date=bank.business_date,
                    now=timezone.now(),
                )
                holds.append(hold.pk)
            elif name == "hold_release" and holds:
                services.hold_release(hold_id=rng.choice(holds), actor=teller, now=timezone.now())
            elif name == "freeze_briefly":
                # Frozen for a moment while the others keep posting, then lifted by the same
                # worker, so freezes interleave with postings without taking over the run.
                account_id = rng.choice(customers)
                account_services.account_freeze(
                    account_id=account_id,
                    freeze_type=rng.choice(["debit", "credit", "total"]),
                    reason="storm",
                    actor=supervisor,
                    now=timezone.now(),
                )
                time.sleep(0.01)
                account_services.account_unfreeze(
                    account_id=account_id, reason="storm over", actor=supervisor, now=timezone.now()
                )

            elif name == "enter_for_approval":
                payer, payee = rng.sample(customers, 2)
                result = services.movement_execute(
                    movement=services.Movement(
                        txn_type="transfer",
                        debit_account_id=payer,
                        credit_account_id=payee,
                        amount=usd(rng.randint(20_01, 60_00)),
                        channel="api",
                    ),
                    actor=teller,
                    business_date=bank.business_date,
                    now=timezone.now(),
                )
                assert not result.posted
                entered.append(result.journal.pk)
            elif name == "approve_or_reject" and entered:
                journal_id = rng.choice(entered)
                if rng.random() < 0.7:
                    services.journal_approve(
                        journal_id=journal_id,
                        actor=supervisor,
                        business_date=bank.business_date,
                        now=timezone.now(),
                    )
                    journals.append(journal_id)
                else:
                    services.journal_reject(
                        journal_id=journal_id, reason="storm", actor=supervisor, now=timezone.now()
                    )

        def worker(index: int) -> Counter:
            rng = random.Random(20261130 + index)
            tally: Counter = Counter()
            for _ in range(self.OPERATIONS):
                name = rng.choices(names, weights)[0]
                try:
                    operate(name, rng)
                    tally[(name, "ok")] += 1
                except DomainError as exc:  # refusals are fine; they are the rules working
                    tally[(name, type(exc).__name__)] += 1
                except DatabaseError as exc:
                    if not is_deadlock(exc):
                        raise
                    tally[("deadlock", name)] += 1
            return tally

        outcomes = run_together(worker, self.WORKERS)

        assert [o.error for o in outcomes if o.error] == []
        tally = sum((o.value for o in outcomes), Counter())
        assert sum(n for (name, _), n in tally.items() if name == "deadlock") == 0, tally
        # The storm must actually have moved money both ways, or it proves little.
        assert tally[("transfer", "ok")] >= 50, tally
        assert tally[("reverse", "ok")] >= 1, tally
        assert tally[("hold_place", "ok")] >= 1, tally
        assert ledger_violations() == []
        call_command("ledger_verify")
        for saver in savers:
            snapshot = balance_snapshot(account_id=saver.pk)
            assert snapshot.available.minor >= SAVINGS_MIN_MINOR, snapshot
        current_snapshot = balance_snapshot(account_id=current.pk)
        assert current_snapshot.ledger.minor >= -OVERDRAFT_MINOR, current_snapshot
        assert current_snapshot.available.minor >= 0, current_snapshot

        # Money is only ever moved, never made: every currency's balances still sum to zero,
        # counting the teller-cash deltas not yet folded, and again once they are folded in.
        def net_by_currency(field: str) -> dict[str, int]:
            return dict(
                balances_live()
                .values("currency")
                .annotate(net=Sum(field))
                .values_list("currency", "net")
            )

        assert OfficeBalanceDelta.objects.filter(account_id=cash.pk).exists()
        assert set(net_by_currency("live_minor").values()) == {0}, net_by_currency("live_minor")
        assert services.office_balances_fold() > 0
        assert not OfficeBalanceDelta.objects.exists()
        assert set(net_by_currency("ledger_minor").values()) == {0}
        assert running_balance_breaks(customers) == []
        # Office entries carry no running balance: the cash row is not locked by postings.
        assert not Entry.objects.filter(
            account_id=cash.pk, balance_after_minor__isnull=False
        ).exists()


class TestLastFundsRace:
    def test_sixteen_withdrawals_of_nine_from_ten_let_exactly_one_through(
        self, bank, funded_account
    ):
        saver = funded_account("10.00")
        cash = bank.office_account("teller_cash")

        outcomes = run_together(
            lambda _: move(bank, "cash_withdrawal", saver.pk, cash.pk, 9_00), 16
        )

        errors = Counter(type(o.error).__name__ for o in outcomes if o.error)
        assert errors == {"InsufficientFunds": 15}
        assert sum(1 for o in outcomes if o.error is None) == 1
        assert all(isinstance(o.error, InsufficientFunds) for o in outcomes if o.error)
        assert wire(saver) == "1.00"
        assert (
            Journal.objects.filter(entries__account=saver, txn_type="cash_withdrawal").count() == 1
        )
        assert ledger_violations() == []


class TestOppositeTransfers:
    ROUNDS = 150

    def test_two_sessions_paying_each_other_back_and_forth_never_deadlock(
        self, bank, funded_account
    ):
        alice = funded_account("200.00")
        bob = funded_account("200.00")
        directions = [(alice.pk, bob.pk), (bob.pk, alice.pk)]

        def worker(index: int) -> Counter:
            payer, payee = directions[index]
            tally: Counter = Counter()
            for _ in range(self.ROUNDS):
                try:
                    move(bank, "transfer", payer, payee, 1_00)
                    tally["ok"] += 1
                except DatabaseError as exc:
                    if not is_deadlock(exc):
                        raise
                    tally["deadlock"] += 1
            return tally

        outcomes = run_together(worker, 2)

        assert [o.error for o in outcomes if o.error] == []
        assert [o.value for o in outcomes] == [Counter(ok=self.ROUNDS)] * 2
        assert (wire(alice), wire(bob)) == ("200.00", "200.00")
        assert running_balance_breaks([alice.pk, bob.pk]) == []
        assert ledger_violations() == []


class TestDoubleReversal:
    def test_eight_concurrent_reversals_of_one_journal_post_exactly_one(
        self, bank, funded_account, open_account, post_movement
    ):
        payer = funded_account("100.00")
        payee = open_account()
        original = post_movement("transfer", payer, payee, "30.00").journal
        supervisors = [UserFactory(roles=["supervisor"]) for _ in range(8)]

        outcomes = run_together(lambda i: reverse(bank, original.pk, supervisors[i]), 8)

        reversals = [o.value for o in outcomes if o.error is None]
        assert len(reversals) == 1
        assert all(isinstance(o.error, AlreadyReversed) for o in outcomes if o.error), [
            o.error for o in outcomes
        ]
        assert list(Journal.objects.filter(reversal_of=original).values_list("pk", flat=True)) == [
            reversals[0].pk
        ]
        assert (wire(payer), wire(payee)) == ("100.00", "0.00")
        assert ledger_violations() == []


class TestConcurrentApproval:
    def test_eight_supervisors_approving_one_entered_item_post_it_once(
        self, bank, funded_account, open_account, teller
    ):
        ApprovalThreshold.objects.create(currency="USD", channel="api", amount_minor=1000_00)
        payer = funded_account("5000.00")
        payee = open_account()
        entered = services.movement_execute(
            movement=services.Movement(
                txn_type="transfer",
                debit_account_id=payer.pk,
                credit_account_id=payee.pk,
                amount=usd(1500_00),
                channel="api",
            ),
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        ).journal
        supervisors = [UserFactory(roles=["supervisor"]) for _ in range(8)]

        outcomes = run_together(
            lambda i: services.journal_approve(
                journal_id=entered.pk,
                actor=supervisors[i],
                business_date=bank.business_date,
                now=timezone.now(),
            ),
            8,
        )

        approvals = [o.value for o in outcomes if o.error is None]
        assert len(approvals) == 1
        assert all(isinstance(o.error, JournalNotPending) for o in outcomes if o.error), [
            o.error for o in outcomes
        ]
        entered.refresh_from_db()
        assert entered.status == Journal.Status.POSTED
        assert entered.checker_id == approvals[0].checker_id
        assert Entry.objects.filter(journal=entered).count() == 2
        assert Hold.objects.get(journal=entered).status == Hold.Status.CONSUMED
        payer_snapshot = balance_snapshot(account_id=payer.pk)
        assert (payer_snapshot.ledger.to_wire(), payer_snapshot.held.to_wire()) == (
            "3500.00",
            "0.00",
        )
        assert wire(payee) == "1500.00"
        assert ledger_violations() == []
