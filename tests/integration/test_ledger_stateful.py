"""The ledger as a state machine (hypothesis): random sequences of operations against a model.

A plain-Python model predicts, for every operation, either the exact balances it leaves or
the domain refusal it must meet. After every step the database must agree with the model
(ledger and held balance of every account the machine opened, which journals are reversed)
and every ledger invariant must hold. Transfers go through ``idempotent_execute`` with a key,
so client retries (replayed byte for byte, or run again if the first attempt was refused)
and a key reused for another amount are part of the random sequences too.

Each machine run opens its own accounts, so runs inside one test transaction do not see each
other's money (teller cash is shared and is tracked from where the run found it).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts import services as account_services
from accounts.models import ProductTerms
from accounts.services import AccountStatusInvalid
from banksim.core.errors import DomainError
from banksim.core.money import Money
from ledger import services
from ledger.errors import (
    AccountFrozen,
    AlreadyReversed,
    HoldNotActive,
    IdempotencyKeyReused,
    InsufficientFunds,
    JournalNotPending,
    NotReversible,
    SameAccount,
    SelfApproval,
)
from ledger.idempotency import IdempotencyClaim, StoredResponse, idempotent_execute
from ledger.models import ApprovalThreshold, Hold, IdempotencyRecord, Journal
from ledger.selectors import balance_snapshot, ledger_violations
from tests.conftest import Bank
from tests.factories import CustomerFactory, UserFactory

SAVINGS_MIN_MINOR = 10_00
OVERDRAFT_MINOR = 200_00
API_APPROVAL_THRESHOLD_MINOR = 300_00

SMALL = st.integers(min_value=1, max_value=500_00)
DEPOSIT = st.integers(min_value=1, max_value=1500_00)
OPENING_DEPOSIT = st.integers(min_value=500_00, max_value=3000_00)
LARGE = st.integers(min_value=API_APPROVAL_THRESHOLD_MINOR + 1, max_value=450_00)
FREEZE_TYPES = st.sampled_from(["debit", "credit", "total"])

Refusal = type[DomainError]


@dataclass
class ModelAccount:
    office: bool
    min_balance: int = 0
    overdraft: int = 0
    ledger: int = 0
    held: int = 0
    freeze: str = ""  # "", "debit", "credit" or "total"
    reached_floor: bool = False

    def refusal(self, *, net: int, check_status: bool = True) -> Refusal | None:
        """The first rule this account breaks when its balance moves by ``net``."""
        if check_status and (
            self.freeze == "total"
            or (self.freeze == "debit" and net < 0)
            or (self.freeze == "credit" and net > 0)
        ):
            return AccountFrozen
        if net < 0 and not self.office and self.spendable() + net < self.min_balance:
            return InsufficientFunds
        return None

    def spendable(self) -> int:
        return self.ledger - self.held + self.overdraft


@dataclass
class ModelJournal:
    legs: dict[int, int]  # account id -> net minor units (credit positive)
    is_reversal: bool = False
    reversed: bool = False


@dataclass
class ModelEntered:
    payer: int
    payee: int
    amount: int
    status: str = "entered"


@dataclass
class ModelRequest:
    """A transfer request sent with an Idempotency-Key, and what it answered if it committed."""

    key: str
    payer: int
    payee: int
    amount: int
    response: StoredResponse | None = None


@dataclass
class Model:
    requests: list[ModelRequest] = field(default_factory=list)
    accounts: dict[int, ModelAccount] = field(default_factory=dict)
    journals: dict[int, ModelJournal] = field(default_factory=dict)
    holds: dict[int, tuple[int, int, bool]] = field(default_factory=dict)  # account, amount, active
    entered: dict[int, ModelEntered] = field(default_factory=dict)

    def refusals(self, legs: dict[int, int], *, check_status: bool = True) -> set[Refusal]:
        # The posting function checks accounts in no fixed order, so when two accounts break
        # a rule either account's refusal is a correct answer; one account's own rules are
        # checked in a fixed order (status, then funds).
        found = {
            self.accounts[a].refusal(net=n, check_status=check_status) for a, n in legs.items()
        }
        return {r for r in found if r is not None}

    def apply(self, legs: dict[int, int]) -> None:
        for account_id, net in legs.items():
            self.accounts[account_id].ledger += net


class LedgerMachine(RuleBasedStateMachine):
    """Bound to a bank and staff by ``bound`` before it runs."""

    bank: Bank
    teller: User
    supervisor: User

    accounts = Bundle("accounts")
    holds = Bundle("holds")
    journals = Bundle("journals")
    entered = Bundle("entered")

    @classmethod
    def bound(cls, *, bank: Bank, teller: User, supervisor: User) -> type[LedgerMachine]:
        return type(
            "BoundLedgerMachine", (cls,), {"bank": bank, "teller": teller, "supervisor": supervisor}
        )

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.cash_id = self.bank.office_account("teller_cash").pk
        self.model.accounts[self.cash_id] = ModelAccount(
            office=True, ledger=balance_snapshot(account_id=self.cash_id).ledger.minor
        )

    # --- helpers -----------------------------------------------------------------------

    def _call(self, expected: set[Refusal], call: object) -> object | None:
        """Run ``call``; it must succeed iff the model expects no refusal."""
        try:
            result = call()  # type: ignore[operator]
        except DomainError as exc:
            assert type(exc) in expected, f"unexpected {type(exc).__name__}: {exc.detail}"
            return None
        assert not expected, f"expected one of {[e.__name__ for e in expected]}, it succeeded"
        return result

    def _move(self, txn_type: str, debit: int, credit: int, minor: int, channel: str = "teller"):
        movement = services.Movement(
            txn_type=txn_type,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=Money.from_minor(minor, "USD"),
            channel=channel,
        )
        return lambda: services.movement_execute(
            movement=movement,
            actor=self.teller,
            business_date=self.bank.business_date,
            now=timezone.now(),
        )

    def _posted(self, debit: int, credit: int, minor: int) -> object:
        legs = {debit: -minor, credit: minor}
        result = self._call(
            self.model.refusals(legs),
            self._move(self._txn_type(debit, credit), debit, credit, minor),
        )
        if result is None:
            return multiple()
        assert result.posted
        self.model.apply(legs)
        self.model.journals[result.journal.pk] = ModelJournal(legs=legs)
        return result.journal.pk

    def _txn_type(self, debit: int, credit: int) -> str:
        if debit == self.cash_id:
            return "cash_deposit"
        if credit == self.cash_id:
            return "cash_withdrawal"
        return "transfer"

    def _db_footprint(self) -> tuple[object, ...]:
        ids = list(self.model.accounts)
        snapshots = tuple(balance_snapshot(account_id=a) for a in ids)
        journals = Journal.objects.filter(entries__account_id__in=ids).distinct().count()
        holds = Hold.objects.filter(account_id__in=ids, status=Hold.Status.ACTIVE).count()
        keys = IdempotencyRecord.objects.filter(client_id="state-machine").count()
        return snapshots, journals, holds, keys

    # --- rules -------------------------------------------------------------------------

    @rule(target=accounts, product=st.sampled_from(["SBA-USD", "CAA-USD"]))
    def open_account(self, product: str) -> int:
        account = account_services.account_open(
            customer_id=CustomerFactory(home_branch=self.bank.branch).pk,
            product_code=product,
            branch_id=self.bank.branch.pk,
            actor=None,
            business_date=self.bank.business_date,
            now=timezone.now(),
        )
        savings = product == "SBA-USD"
        self.model.accounts[account.pk] = ModelAccount(
            office=False,
            min_balance=SAVINGS_MIN_MINOR if savings else 0,
            overdraft=0 if savings else OVERDRAFT_MINOR,
        )
        return account.pk

    @initialize(target=accounts, deposits=st.lists(OPENING_DEPOSIT, min_size=3, max_size=3))
    def open_and_fund_two_savers_and_a_current_account(self, deposits: list[int]) -> object:
        opened = [self.open_account(p) for p in ("SBA-USD", "SBA-USD", "CAA-USD")]
        for account, minor in zip(opened, deposits, strict=True):
            self.cash_deposit(account, minor)
        return multiple(*opened)

    @rule(target=journals, account=accounts, minor=DEPOSIT)
    def cash_deposit(self, account: int, minor: int) -> object:
        return self._posted(self.cash_id, account, minor)

    @rule(target=journals, account=accounts, minor=SMALL)
    def cash_withdrawal(self, account: int, minor: int) -> object:
        return self._posted(account, self.cash_id, minor)

    @rule(target=journals, account=accounts, offset=st.sampled_from([0, 1, -1]))
    def withdraw_to_the_floor(self, account: int, offset: int) -> object:
        # Random amounts rarely land on the boundary; this one aims at it, holds included.
        model = self.model.accounts[account]
        minor = max(1, model.spendable() - model.min_balance + offset)
        return self._posted(account, self.cash_id, minor)

    @rule(target=holds, account=accounts, offset=st.sampled_from([0, 1, -1]))
    def hold_to_the_floor(self, account: int, offset: int) -> object:
        model = self.model.accounts[account]
        return self.place_hold(account, max(1, model.spendable() - model.min_balance + offset))

    def _payee(self, data: st.DataObject, payer: int) -> int:
        # Drawn from the model, not the bundle, so that payer == payee (a refusal) is one
        # choice among several instead of a frequent waste of steps.
        others = sorted(a for a, m in self.model.accounts.items() if not m.office and a != payer)
        return data.draw(st.sampled_from([*others, payer]), label="payee")

    def _claim(self, request: ModelRequest, *, amount: int | None = None) -> IdempotencyClaim:
        body = {
            "debit_account_id": request.payer,
            "credit_account_id": request.payee,
            "amount": Money.from_minor(
                request.amount if amount is None else amount, "USD"
            ).to_wire(),
            "currency": "USD",
        }
        return IdempotencyClaim.build(
            client_id="state-machine", key=request.key, method="POST", path="/transfers", body=body
        )

    def _submit(self, request: ModelRequest, claim: IdempotencyClaim) -> StoredResponse:
        movement = services.Movement(
            txn_type="transfer",
            debit_account_id=request.payer,
            credit_account_id=request.payee,
            amount=Money.from_minor(request.amount, "USD"),
            channel="teller",
        )
        return idempotent_execute(
            claim=claim,
            operation=lambda: services.movement_post(
                movement=movement,
                actor=self.teller,
                business_date=self.bank.business_date,
                now=timezone.now(),
            ),
            render=lambda result: StoredResponse(
                status=201, body=json.dumps({"journal_id": result.journal.pk}).encode()
            ),
            now=timezone.now(),
        )

    def _transfer(self, request: ModelRequest) -> int | None:
        """Send (or re-send) a transfer request; return the journal it posted, if it did now."""
        legs = {request.payer: -request.amount, request.payee: request.amount}
        if request.response is not None:
            expected: set[Refusal] = set()  # a committed key answers from its record
        elif request.payer == request.payee:
            expected = {SameAccount}
        else:
            expected = self.model.refusals(legs)
        before = self._db_footprint() if request.response is not None else None

        response = self._call(expected, lambda: self._submit(request, self._claim(request)))

        if response is None:
            return None  # refused: the key stays unused and a retry runs the request again
        if request.response is not None:
            assert response.replayed
            assert (response.status, response.body) == (
                request.response.status,
                request.response.body,
            )
            assert self._db_footprint() == before
            return None
        assert not response.replayed
        journal_id = json.loads(response.body)["journal_id"]
        request.response = response
        self.model.apply(legs)
        self.model.journals[journal_id] = ModelJournal(legs=legs)
        return journal_id

    @rule(target=journals, payer=accounts, data=st.data(), minor=SMALL)
    def transfer(self, payer: int, data: st.DataObject, minor: int) -> object:
        request = ModelRequest(uuid.uuid4().hex, payer, self._payee(data, payer), minor)
        self.model.requests.append(request)
        journal_id = self._transfer(request)
        return multiple() if journal_id is None else journal_id

    @precondition(lambda self: self.model.requests)
    @rule(target=journals, data=st.data())
    def replay_transfer(self, data: st.DataObject) -> object:
        """A client retry with the same Idempotency-Key: replayed if it committed, else rerun."""
        request = data.draw(st.sampled_from(self.model.requests), label="request")
        journal_id = self._transfer(request)
        return multiple() if journal_id is None else journal_id

    @precondition(lambda self: any(r.response for r in self.model.requests))
    @rule(data=st.data(), extra=st.integers(min_value=1, max_value=100))
    def reuse_a_key_for_another_amount(self, data: st.DataObject, extra: int) -> None:
        used = [r for r in self.model.requests if r.response is not None]
        request = data.draw(st.sampled_from(used), label="request")
        before = self._db_footprint()

        self._call(
            {IdempotencyKeyReused},
            lambda: self._submit(request, self._claim(request, amount=request.amount + extra)),
        )

        assert self._db_footprint() == before

    @rule(target=holds, account=accounts, minor=SMALL)
    def place_hold(self, account: int, minor: int) -> object:
        model = self.model.accounts[account]
        expected: set[Refusal] = set()
        if model.freeze in ("debit", "total"):
            expected = {AccountFrozen}
        elif model.spendable() - minor < model.min_balance:
            expected = {InsufficientFunds}

        hold = self._call(
            expected,
            lambda: services.hold_place(
                account_id=account,
                amount=Money.from_minor(minor, "USD"),
                reason="card authorisation",
                expires_on=None,
                actor=self.teller,
                business_date=self.bank.business_date,
                now=timezone.now(),
            ),
        )

        if hold is None:
            return multiple()
        model.held += minor
        self.model.holds[hold.pk] = (account, minor, True)
        return hold.pk

    @rule(hold=holds)
    def release_hold(self, hold: int) -> None:
        account, minor, active = self.model.holds[hold]

        released = self._call(
            set() if active else {HoldNotActive},
            lambda: services.hold_release(hold_id=hold, actor=self.teller, now=timezone.now()),
        )

        if released is not None:
            self.model.accounts[account].held -= minor
            self.model.holds[hold] = (account, minor, False)

    def _reverse(self, journal: int) -> object | None:
        model = self.model.journals[journal]
        if model.is_reversal:
            expected: set[Refusal] = {NotReversible}
        elif model.reversed:
            expected = {AlreadyReversed}
        else:
            # A reversal undoes the bank's own posting: freezes do not stop it, funds do.
            mirror = {a: -n for a, n in model.legs.items()}
            expected = self.model.refusals(mirror, check_status=False)

        reversal = self._call(
            expected,
            lambda: services.journal_reverse(
                journal_id=journal,
                reason="keyed in error",
                actor=self.supervisor,
                channel="teller",
                business_date=self.bank.business_date,
                now=timezone.now(),
            ),
        )

        if reversal is None:
            return None
        assert reversal.reversal_of_id == journal
        mirror = {a: -n for a, n in model.legs.items()}
        self.model.apply(mirror)
        model.reversed = True
        self.model.journals[reversal.pk] = ModelJournal(legs=mirror, is_reversal=True)
        return reversal.pk

    @rule(target=journals, journal=journals)
    def reverse(self, journal: int) -> object:
        reversal = self._reverse(journal)
        return multiple() if reversal is None else reversal

    @rule(journal=journals)
    def replay_reversal(self, journal: int) -> None:
        """Reversing what is already reversed is refused and changes nothing."""
        self._reverse(journal)
        if not self.model.journals[journal].reversed:
            return
        before = self._db_footprint()

        self._call({AlreadyReversed}, lambda: self._reverse_call(journal))

        assert self._db_footprint() == before

    def _reverse_call(self, journal: int) -> Journal:
        return services.journal_reverse(
            journal_id=journal,
            reason="retry",
            actor=self.supervisor,
            channel="teller",
            business_date=self.bank.business_date,
            now=timezone.now(),
        )

    @rule(account=accounts, freeze_type=FREEZE_TYPES)
    def freeze(self, account: int, freeze_type: str) -> None:
        model = self.model.accounts[account]

        frozen = self._call(
            {AccountStatusInvalid} if model.freeze else set(),
            lambda: account_services.account_freeze(
                account_id=account,
                freeze_type=freeze_type,
                reason="court order",
                actor=self.supervisor,
                now=timezone.now(),
            ),
        )

        if frozen is not None:
            model.freeze = freeze_type

    @precondition(lambda self: any(m.freeze for m in self.model.accounts.values()))
    @rule(data=st.data())
    def unfreeze(self, data: st.DataObject) -> None:
        frozen = sorted(a for a, m in self.model.accounts.items() if m.freeze)
        account = data.draw(st.sampled_from(frozen), label="account")
        model = self.model.accounts[account]

        unfrozen = self._call(
            set(),
            lambda: account_services.account_unfreeze(
                account_id=account, reason="order lifted", actor=self.supervisor, now=timezone.now()
            ),
        )

        if unfrozen is not None:
            model.freeze = ""

    @rule(target=entered, payer=accounts, data=st.data(), minor=LARGE)
    def enter_large_transfer(self, payer: int, data: st.DataObject, minor: int) -> object:
        payee = self._payee(data, payer)
        model = self.model.accounts[payer]
        if payee == payer:
            expected: set[Refusal] = {SameAccount}
        elif model.freeze in ("debit", "total"):
            expected = {AccountFrozen}
        elif model.spendable() - minor < model.min_balance:
            expected = {InsufficientFunds}
        else:
            expected = set()

        result = self._call(expected, self._move("transfer", payer, payee, minor, channel="api"))

        if result is None:
            return multiple()
        assert not result.posted
        model.held += minor
        self.model.entered[result.journal.pk] = ModelEntered(payer, payee, minor)
        return result.journal.pk

    @rule(target=journals, journal=entered)
    def approve(self, journal: int) -> object:
        item = self.model.entered[journal]
        legs = {item.payer: -item.amount, item.payee: item.amount}
        if item.status != "entered":
            expected: set[Refusal] = {JournalNotPending}
        else:
            # Approval consumes the item's own hold before the funds check.
            self.model.accounts[item.payer].held -= item.amount
            expected = self.model.refusals(legs)
            self.model.accounts[item.payer].held += item.amount

        approved = self._call(
            expected,
            lambda: services.journal_approve(
                journal_id=journal,
                actor=self.supervisor,
                business_date=self.bank.business_date,
                now=timezone.now(),
            ),
        )

        if approved is None:
            return multiple()
        assert approved.status == Journal.Status.POSTED
        item.status = "posted"
        self.model.accounts[item.payer].held -= item.amount
        self.model.apply(legs)
        self.model.journals[journal] = ModelJournal(legs=legs)
        return journal

    @rule(journal=entered)
    def maker_approves_own(self, journal: int) -> None:
        pending = self.model.entered[journal].status == "entered"

        self._call(
            {SelfApproval} if pending else {JournalNotPending},
            lambda: services.journal_approve(
                journal_id=journal,
                actor=self.teller,
                business_date=self.bank.business_date,
                now=timezone.now(),
            ),
        )

    @rule(journal=entered)
    def reject(self, journal: int) -> None:
        item = self.model.entered[journal]

        rejected = self._call(
            set() if item.status == "entered" else {JournalNotPending},
            lambda: services.journal_reject(
                journal_id=journal, reason="no documents", actor=self.supervisor, now=timezone.now()
            ),
        )

        if rejected is not None:
            item.status = "rejected"
            self.model.accounts[item.payer].held -= item.amount

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        for account_id, model in self.model.accounts.items():
            snapshot = balance_snapshot(account_id=account_id)
            assert (snapshot.ledger.minor, snapshot.held.minor) == (model.ledger, model.held), (
                f"account {account_id}"
            )
            if model.office:
                continue
            # Every path that lowers available money checks the floor, so once an account has
            # reached its minimum balance (holds included) it never drops below it again.
            if model.reached_floor:
                assert snapshot.available.minor >= model.min_balance, f"account {account_id}"
            model.reached_floor = snapshot.available.minor >= model.min_balance

    @invariant()
    def reversals_match_the_model(self) -> None:
        reversed_ids = set(
            Journal.objects.filter(reversal_of_id__in=list(self.model.journals)).values_list(
                "reversal_of_id", flat=True
            )
        )
        assert reversed_ids == {j for j, m in self.model.journals.items() if m.reversed}

    @invariant()
    def the_ledger_is_sound(self) -> None:
        assert ledger_violations() == []


# A failure is shrunk against the database step by step, which Hypothesis caps at five
# minutes; the timeout leaves room for it to print the minimal failing sequence.
@pytest.mark.timeout(600)
@pytest.mark.django_db
def test_random_operation_sequences_keep_the_ledger_equal_to_the_model(bank):
    ProductTerms.objects.filter(product=bank.products["SBA-USD"]).update(
        min_balance_minor=SAVINGS_MIN_MINOR
    )
    ProductTerms.objects.filter(product=bank.products["CAA-USD"]).update(
        overdraft_limit_minor=OVERDRAFT_MINOR
    )
    ApprovalThreshold.objects.create(
        currency="USD", channel="api", amount_minor=API_APPROVAL_THRESHOLD_MINOR
    )
    machine = LedgerMachine.bound(
        bank=bank,
        teller=UserFactory(username="machine-teller", roles=["teller"]),
        supervisor=UserFactory(username="machine-supervisor", roles=["supervisor"]),
    )

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
