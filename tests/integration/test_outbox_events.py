"""Every state change writes its event in its own transaction, and it reaches RabbitMQ once.

The catalogue test makes one change of every kind through the services, drains the outbox
into a fresh exchange on the machine's RabbitMQ, reads it back with the reference consumer
and checks, per change, exactly one envelope of the documented shape.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Customer
from banksim.core.money import Money
from ledger import services as ledger_services
from ledger.models import ApprovalThreshold, Entry
from ledger.posting import Leg, journal_post
from limits.errors import DailyLimitExceeded
from limits.models import LimitRule
from limits.services import LimitRuleSpec, limit_rule_create
from outbox import events as outbox_events
from outbox.models import OutboxEvent
from outbox.services import (
    DrainConfig,
    outbox_enqueue,
    outbox_lanes_ensure,
    outbox_publish_batch,
)
from outbox.testing import rabbit_stream
from tests.factories import CustomerFactory, UserFactory

ENVELOPE_KEYS = {
    "specversion",
    "id",
    "type",
    "source",
    "subject",
    "time",
    "datacontenttype",
    "schemaversion",
    "businessdate",
    "sequence",
    "data",
}


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def events_of(aggregate_type: str, aggregate_id: str) -> list[tuple[str, int]]:
    return list(
        OutboxEvent.objects.filter(aggregate_type=aggregate_type, aggregate_id=aggregate_id)
        .order_by("sequence")
        .values_list("type", "sequence")
    )


def publish_everything(publisher) -> int:
    """Drain inside the test's transaction (no drain loop: it needs real commits)."""
    outbox_lanes_ensure()
    total = 0
    config = DrainConfig.from_settings(batch_size=200)
    while True:
        result = outbox_publish_batch(publisher=publisher, config=config, now=timezone.now())
        assert not result.error, result.error
        if not result.claimed:
            return total
        total += result.published


@pytest.fixture
def stream():
    with rabbit_stream(url=settings.OUTBOX_PUBLISH_URL) as made:
        yield made


@pytest.fixture
def checker(db):
    return UserFactory(username="checker1", roles=["supervisor"])


@pytest.mark.django_db
class TestEveryChangeIsAnnouncedOnce:
    def test_each_change_reaches_the_exchange_once_in_the_documented_envelope(
        self,
        bank,
        teller,
        checker,
        open_account,
        funded_account,
        post_movement,
        fee_rule,
        stream,
    ):
        now = timezone.now()
        fee_rule()  # a flat 1.00 on transfers out: announced inside transaction.posted
        limit_rule_create(
            spec=LimitRuleSpec(currency="USD", max_amount=usd("1000.00")), actor=None, now=now
        )
        customer = account_services.customer_create(
            data=account_services.CustomerData(
                customer_type=Customer.CustomerType.INDIVIDUAL,
                birth_date=bank.business_date - timedelta(days=40 * 365),
                national_id_type=Customer.IdType.NATIONAL_ID,
                national_id=f"OUTBOX{uuid.uuid4().hex[:8]}",
                home_branch_id=bank.branch.pk,
                first_name="Ada",
                last_name="Payer",
            ),
            actor=teller,
            now=now,
        )
        account_services.customer_update(
            customer_id=customer.pk, changes={"segment": "retail"}, actor=teller
        )
        account_services.customer_kyc_set(
            customer_id=customer.pk,
            status="verified",
            actor=checker,
            business_date=bank.business_date,
        )
        payer = open_account(customer=Customer.objects.get(pk=customer.pk))
        cash = bank.office_account("teller_cash")
        deposit = post_movement("cash_deposit", cash, payer, "1000.00").journal
        ApprovalThreshold.objects.create(currency="USD", amount_minor=200_00)
        payee = open_account()
        transfer = post_movement("transfer", payer, payee, "10.00").journal
        entered = post_movement("transfer", payer, payee, "250.00", actor=teller).journal
        approved = ledger_services.journal_approve(
            journal_id=entered.pk, actor=checker, business_date=bank.business_date, now=now
        )
        to_reject = post_movement("transfer", payer, payee, "240.00", actor=teller).journal
        ledger_services.journal_reject(
            journal_id=to_reject.pk, reason="duplicate", actor=checker, now=now
        )
        with pytest.raises(DailyLimitExceeded):
            post_movement("transfer", payer, payee, "900.00")
        ledger_services.journal_reverse(
            journal_id=approved.pk,
            reason="customer complaint",
            actor=checker,
            channel="teller",
            business_date=bank.business_date,
            now=now,
        )
        ledger_services.journal_reverse(
            journal_id=transfer.pk,
            reason="sent twice",
            actor=checker,
            channel="teller",
            business_date=bank.business_date,
            now=now,
        )
        hold = ledger_services.hold_place(
            account_id=payer.pk,
            amount=usd("5.00"),
            reason="court order",
            expires_on=None,
            actor=teller,
            business_date=bank.business_date,
            now=now,
        )
        ledger_services.hold_release(hold_id=hold.pk, actor=checker, now=now)
        account_services.account_freeze(
            account_id=payee.pk, freeze_type="debit", reason="fraud check", actor=checker, now=now
        )
        account_services.account_unfreeze(
            account_id=payee.pk, reason="cleared", actor=checker, now=now
        )
        spare = open_account()
        account_services.account_close(
            account_id=spare.pk,
            reason="not needed",
            actor=checker,
            business_date=bank.business_date,
            now=now,
        )
        with transaction.atomic():  # emitted by end of day (a later issue): defined here
            outbox_enqueue(
                event=outbox_events.account_status_changed(
                    outbox_events.EventType.ACCOUNT_DORMANT,
                    payee,
                    reason="no customer activity",
                    actor=None,
                    now=now,
                )
            )
            outbox_enqueue(
                event=outbox_events.eod_started(
                    calendar_code="MAIN", business_date=bank.business_date, now=now
                )
            )
            outbox_enqueue(
                event=outbox_events.eod_progress(
                    calendar_code="MAIN",
                    business_date=bank.business_date,
                    step="interest",
                    rows_done=1,
                    rows_total=2,
                    rows_per_s=1.0,
                    eta_seconds=1.0,
                    now=now,
                )
            )
            outbox_enqueue(
                event=outbox_events.eod_step_finished(
                    calendar_code="MAIN",
                    business_date=bank.business_date,
                    step="interest",
                    rows=2,
                    summary={"seconds": 2.0},
                    now=now,
                )
            )
            outbox_enqueue(
                event=outbox_events.eod_finished(
                    calendar_code="MAIN",
                    business_date=bank.business_date,
                    next_business_date=bank.business_date + timedelta(days=1),
                    now=now,
                )
            )

        published = publish_everything(stream.publisher())
        consumer = stream.consume(expect=published)

        assert consumer.received == published == OutboxEvent.objects.count()
        assert consumer.duplicates == 0 and consumer.gaps() == {} and consumer.conflicts == []
        by_subject: dict[str, list[dict]] = {}
        for envelope in consumer.applied:
            assert set(envelope) == ENVELOPE_KEYS
            assert envelope["specversion"] == "1.0" and envelope["schemaversion"] == 1
            by_subject.setdefault(envelope["subject"], []).append(envelope)

        def stream_of(subject: str) -> list[str]:
            return [e["type"].removeprefix("banksim.") for e in by_subject[subject]]

        assert stream_of(f"customer/{customer.cif_id}") == [
            "customer.created",
            "customer.updated",
            "customer.kyc_changed",
        ]
        assert stream_of(f"account/{payer.account_number}") == [
            "account.opened",
            "hold.placed",  # securing the entered 250.00
            "hold.released",  # consumed by its approval
            "hold.placed",  # securing the 240.00 that is rejected
            "hold.released",
            "limit.breached",
            "hold.placed",  # the court order
            "hold.released",
        ]
        assert stream_of(f"account/{payee.account_number}") == [
            "account.opened",
            "account.frozen",
            "account.unfrozen",
            "account.dormant",
        ]
        assert stream_of(f"account/{spare.account_number}") == ["account.opened", "account.closed"]
        assert stream_of(f"transaction/{deposit.txn_id}") == ["transaction.posted"]
        assert stream_of(f"transaction/{transfer.txn_id}") == [
            "transaction.posted",
            "transaction.reversed",
        ]
        assert stream_of(f"transaction/{entered.txn_id}") == [
            "transaction.entered",
            "transaction.approved",
            "transaction.reversed",
        ]
        assert stream_of(f"transaction/{to_reject.txn_id}") == [
            "transaction.entered",
            "transaction.rejected",
        ]
        assert stream_of("eod/MAIN") == [
            "eod.started",
            "eod.progress",
            "eod.step_finished",
            "eod.finished",
        ]
        for envelopes in by_subject.values():
            assert [e["sequence"] for e in envelopes] == list(range(1, len(envelopes) + 1))
        announced = {e["type"] for e in consumer.applied}
        assert announced == {
            value for name, value in vars(outbox_events.EventType).items() if name.isupper()
        }

    def test_a_posted_transfer_carries_its_legs_fees_and_identity(
        self, bank, funded_account, open_account, post_movement, fee_rule, stream
    ):
        fee_rule()
        payer = funded_account("100.00")
        payee = open_account()

        journal = post_movement("transfer", payer, payee, "12.34").journal

        publish_everything(stream.publisher())
        consumer = stream.consume(idle_timeout=0.5)
        [posted] = [e for e in consumer.applied if e["subject"] == f"transaction/{journal.txn_id}"]
        assert posted["type"] == "banksim.transaction.posted"
        assert posted["source"] == "/banksim/ledger"
        assert posted["sequence"] == 1
        assert posted["businessdate"] == bank.business_date.isoformat()
        data = posted["data"]
        assert data["txn_id"] == journal.txn_id and data["journal_id"] == journal.pk
        assert (data["amount"], data["currency"]) == ("12.34", "USD")
        assert (data["debit_account"], data["credit_account"]) == (
            payer.account_number,
            payee.account_number,
        )
        assert sorted((leg["purpose"], leg["side"], leg["amount"]) for leg in data["legs"]) == [
            ("fee", "C", "1.00"),
            ("fee", "D", "1.00"),
            ("principal", "C", "12.34"),
            ("principal", "D", "12.34"),
        ]
        assert data["fees"][0]["fee"] == "1.00" and data["fees"][0]["waived"] is False


def _spy_posted_legs(monkeypatch) -> list[object]:
    """What ``outbox_events.posted_legs`` returns from now on, call by call."""
    rendered: list[object] = []
    real = outbox_events.posted_legs

    def spy(legs, numbers):
        rendered.append(real(legs, numbers))
        return rendered[-1]

    monkeypatch.setattr(outbox_events, "posted_legs", spy)
    return rendered


def _rendered_by_ledger_post(bank, legs: list[Leg]) -> dict:
    """Post ``legs`` with an event that does not carry them, so the function renders them;
    return that event's data."""
    with transaction.atomic():
        again = journal_post(
            legs=legs,
            txn_type="transfer",
            channel="teller",
            business_date=bank.business_date,
            now=timezone.now(),
            event=outbox_events.posting_event(
                outbox_events.EventType.TRANSACTION_POSTED, currency="USD", data={}, sequence=1
            ),
        )
    return OutboxEvent.objects.get(aggregate_id=again.txn_id).data


@pytest.mark.django_db
class TestPostedLegs:
    """A movement renders its event's legs in Python, fee and tax legs included; ledger_post
    renders them for the other postings."""

    def test_the_caller_and_ledger_post_render_the_same_legs(
        self, bank, funded_account, open_account, post_movement, monkeypatch
    ):
        payer = funded_account("100.00")
        payee = open_account()
        rendered = _spy_posted_legs(monkeypatch)
        journal = post_movement("transfer", payer, payee, "12.34").journal
        by_function = _rendered_by_ledger_post(
            bank, [Leg(payer.pk, "D", usd("12.34")), Leg(payee.pk, "C", usd("12.34"))]
        )

        by_caller = OutboxEvent.objects.get(aggregate_id=journal.txn_id).data
        assert rendered == [by_caller["legs"]]
        principal = {"amount": "12.34", "purpose": "principal"}
        assert (
            by_caller["legs"]
            == by_function["legs"]
            == [
                {"account": payer.account_number, "side": "D", **principal},
                {"account": payee.account_number, "side": "C", **principal},
            ]
        )
        assert (by_caller["txn_id"], by_caller["journal_id"], by_caller["currency"]) == (
            journal.txn_id,
            journal.pk,
            "USD",
        )

    def test_a_fee_and_tax_charging_movement_names_its_gl_legs_as_ledger_post_would(
        self, bank, funded_account, open_account, post_movement, fee_rule, monkeypatch
    ):
        fee_rule(calc_type="percent", rate_percent="0.5", min_fee="1.00", tax_rate_percent="15")
        payer = funded_account("1000.00")  # the same legs are posted twice
        payee = open_account()
        rendered = _spy_posted_legs(monkeypatch)
        journal = post_movement("transfer", payer, payee, "400.00").journal
        posted = [
            Leg(e.account_id, e.side, Money.from_minor(e.amount_minor, e.currency), e.purpose)
            for e in Entry.objects.filter(journal_id=journal.pk).order_by("id")
        ]
        by_function = _rendered_by_ledger_post(bank, posted)

        by_caller = OutboxEvent.objects.get(aggregate_id=journal.txn_id).data
        # Rendered by the caller (not deferred to SQL), and the same as the function's.
        assert rendered == [by_caller["legs"]]
        assert by_caller["legs"] == by_function["legs"]
        income = bank.office_account("fee_income").account_number
        tax = bank.office_account("tax_payable").account_number
        assert [(leg["account"], leg["purpose"], leg["amount"]) for leg in by_caller["legs"]] == [
            (payer.account_number, "principal", "400.00"),
            (payee.account_number, "principal", "400.00"),
            (payer.account_number, "fee", "2.00"),
            (income, "fee", "2.00"),
            (payer.account_number, "fee_tax", "0.30"),
            (tax, "fee_tax", "0.30"),
        ]

    def test_amounts_follow_the_currency_exponent_and_an_unknown_account_defers_to_sql(self):
        legs = [
            Leg(1, "D", Money.parse("1.5", "BHD")),
            Leg(2, "C", Money.parse("1.5", "BHD"), "fee"),
        ]

        assert outbox_events.posted_legs(legs, {1: "A1", 2: "A2"}) == [
            {"account": "A1", "side": "D", "amount": "1.500", "purpose": "principal"},
            {"account": "A2", "side": "C", "amount": "1.500", "purpose": "fee"},
        ]
        assert outbox_events.posted_legs([Leg(1, "D", Money.parse("100", "JPY"))], {1: "A1"}) == [
            {"account": "A1", "side": "D", "amount": "100", "purpose": "principal"}
        ]
        assert outbox_events.posted_legs(legs, {1: "A1"}) is None


@pytest.mark.django_db
class TestEventsFollowTheirTransaction:
    def test_a_refused_posting_leaves_no_posting_event(self, bank, open_account, post_movement):
        payer = open_account()
        payee = open_account()

        with pytest.raises(Exception, match="exceeds the available balance"):
            post_movement("transfer", payer, payee, "1.00")

        assert not OutboxEvent.objects.filter(aggregate_type="transaction").exists()

    def test_a_limit_refusal_is_recorded_although_the_posting_rolled_back(
        self, bank, funded_account, open_account, post_movement
    ):
        limit_rule_create(
            spec=LimitRuleSpec(currency="USD", max_amount=usd("50.00")),
            actor=None,
            now=timezone.now(),
        )
        payer = funded_account("500.00")

        with pytest.raises(DailyLimitExceeded):
            post_movement("transfer", payer, open_account(), "80.00")

        [breach] = OutboxEvent.objects.filter(type="banksim.limit.breached")
        assert breach.aggregate_id == payer.account_number
        assert breach.data["action"] == "refused"
        assert breach.data["requested_amount"] == "80.00"
        assert breach.data["limit_amount"] == "50.00"
        assert not OutboxEvent.objects.filter(
            type="banksim.transaction.posted", data__debit_account=payer.account_number
        ).exists()

    def test_a_limit_that_routes_to_approval_is_announced_with_the_entered_transaction(
        self, bank, teller, funded_account, open_account, post_movement
    ):
        limit_rule_create(
            spec=LimitRuleSpec(
                currency="USD",
                max_amount=usd("50.00"),
                on_breach=LimitRule.OnBreach.REQUIRE_APPROVAL,
            ),
            actor=None,
            now=timezone.now(),
        )
        payer = funded_account("500.00")

        journal = post_movement("transfer", payer, open_account(), "80.00", actor=teller).journal

        assert events_of("transaction", journal.txn_id) == [("banksim.transaction.entered", 1)]
        [breach] = OutboxEvent.objects.filter(type="banksim.limit.breached")
        assert breach.data["action"] == "approval_required"
        assert breach.data["rule_id"] is not None

    def test_sequences_of_one_account_follow_the_commits(self, bank, open_account):
        customer = CustomerFactory(home_branch=bank.branch)
        account = open_account(customer=customer)
        supervisor = UserFactory(username="freezer", roles=["supervisor"])

        for _ in range(3):
            account_services.account_freeze(
                account_id=account.pk,
                freeze_type="total",
                reason="check",
                actor=supervisor,
                now=timezone.now(),
            )
            account_services.account_unfreeze(
                account_id=account.pk, reason="ok", actor=supervisor, now=timezone.now()
            )

        assert [s for _, s in events_of("account", account.account_number)] == list(range(1, 8))


@pytest.mark.django_db
class TestPublishedRowsHaveATime:
    """A row becomes published only with its publish time (trigger, outbox migration 0006)."""

    def _pending(self) -> OutboxEvent:
        outbox_enqueue(event=outbox_events.customer_created(CustomerFactory(), actor=None))
        return OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).latest("id")

    def test_publishing_without_a_time_is_refused(self):
        from django.db import IntegrityError

        event = self._pending()

        with pytest.raises(IntegrityError, match=r"outbox\.published_without_time"):
            with transaction.atomic():
                OutboxEvent.objects.filter(pk=event.pk).update(status="published")

        event.refresh_from_db()
        assert (event.status, event.published_at) == ("pending", None)

    def test_publishing_with_a_time_is_accepted(self):
        event = self._pending()

        OutboxEvent.objects.filter(pk=event.pk).update(
            status="published", published_at=timezone.now()
        )

        event.refresh_from_db()
        assert event.status == "published" and event.published_at is not None
