"""Idempotency-Key on money-moving POSTs: replay, reuse, missing and malformed keys, what burns a
key and what does not, expiry and the purge."""

import datetime as dt
import json

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from banksim.celery import app as celery_app
from ledger import services
from ledger.idempotency import IdempotencyClaim
from ledger.models import IdempotencyRecord, Journal
from ledger.selectors import balance_snapshot
from ledger.tasks import idempotency_purge_task
from tests.api.ledger_support import LedgerRows, assert_problem, post_json, seat


def ledger(account) -> str:
    return balance_snapshot(account_id=account.pk).ledger.to_wire()


@pytest.fixture(autouse=True)
def seated(bank, teller, supervisor):
    seat(teller, bank.branch)
    seat(supervisor, bank.branch)


@pytest.fixture
def teller_api(make_client, teller):
    return make_client(teller)


@pytest.fixture
def accounts(funded_account, open_account):
    return funded_account("100.00"), open_account()


@pytest.fixture
def transfer(accounts):
    payer, payee = accounts
    return {
        "debit_account": payer.account_number,
        "credit_account": payee.account_number,
        "amount": "10.00",
        "currency": "USD",
    }


class TestReplay:
    def test_a_retry_replays_the_first_answer_byte_for_byte_and_posts_once(
        self, teller_api, transfer, accounts
    ):
        payer, payee = accounts
        first = post_json(teller_api, "/api/v1/transfers", transfer, key="k-1")

        retry = post_json(teller_api, "/api/v1/transfers", transfer, key="k-1")

        assert first.status_code == 201
        assert (retry.status_code, retry.content) == (first.status_code, first.content)
        assert retry["Content-Type"] == first["Content-Type"] == "application/json"
        assert retry["Idempotent-Replayed"] == "true"
        assert not first.has_header("Idempotent-Replayed")
        assert Journal.objects.filter(txn_id=first.json()["txn_id"]).count() == 1
        assert (ledger(payer), ledger(payee)) == ("90.00", "10.00")

    def test_reordered_keys_and_whitespace_are_the_same_request(
        self, teller_api, transfer, accounts
    ):
        payer, _ = accounts
        first = post_json(teller_api, "/api/v1/transfers", transfer, key="k-order")
        reordered = json.dumps(dict(reversed(list(transfer.items()))), indent=4)

        retry = teller_api.post(
            "/api/v1/transfers",
            reordered,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="k-order",
        )

        assert retry.content == first.content
        assert ledger(payer) == "90.00"

    def test_a_reversal_retried_replays_instead_of_conflicting(
        self, make_client, supervisor, accounts, post_movement
    ):
        payer, payee = accounts
        original = post_movement("transfer", payer, payee, "30.00").journal
        api = make_client(supervisor)
        path = f"/api/v1/transactions/{original.txn_id}/reverse"
        first = post_json(api, path, {"reason": "dup"}, key="rev-1")

        retry = post_json(api, path, {"reason": "dup"}, key="rev-1")

        assert (first.status_code, retry.status_code) == (201, 201)
        assert retry.content == first.content
        assert Journal.objects.filter(reversal_of=original).count() == 1
        assert ledger(payer) == "100.00"

    def test_a_hold_retried_is_placed_once(self, teller_api, accounts):
        payer, _ = accounts
        path = f"/api/v1/accounts/{payer.account_number}/holds"
        body = {"amount": "25.00", "currency": "USD", "reason": "lien"}
        first = post_json(teller_api, path, body, key="hold-1")

        retry = post_json(teller_api, path, body, key="hold-1")

        assert retry.content == first.content
        assert payer.holds.count() == 1
        assert balance_snapshot(account_id=payer.pk).available.to_wire() == "75.00"

    def test_keys_belong_to_the_user_so_two_users_may_pick_the_same_key(
        self, teller_api, make_client, supervisor, transfer, accounts
    ):
        payer, _ = accounts
        mine = post_json(teller_api, "/api/v1/transfers", transfer, key="shared")

        theirs = post_json(make_client(supervisor), "/api/v1/transfers", transfer, key="shared")

        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert mine.json()["txn_id"] != theirs.json()["txn_id"]
        assert ledger(payer) == "80.00"

    def test_the_record_lives_for_the_configured_ttl(self, teller_api, teller, transfer):
        post_json(teller_api, "/api/v1/transfers", transfer, key="ttl")

        record = IdempotencyRecord.objects.get(client_id=f"user:{teller.pk}", key="ttl")

        assert record.expires_at - record.created_at == dt.timedelta(
            hours=settings.IDEMPOTENCY_KEY_TTL_HOURS
        )
        assert settings.IDEMPOTENCY_KEY_TTL_HOURS >= 24
        assert (record.method, record.path, record.response_status) == (
            "POST",
            "/api/v1/transfers",
            201,
        )


class TestKeyReuse:
    def test_a_different_body_under_a_used_key_is_refused(self, teller_api, transfer, accounts):
        payer, _ = accounts
        post_json(teller_api, "/api/v1/transfers", transfer, key="k-2")
        before = LedgerRows.now()

        response = post_json(
            teller_api, "/api/v1/transfers", {**transfer, "amount": "11.00"}, key="k-2"
        )

        assert_problem(response, 422, "idempotency.key_reused")
        assert LedgerRows.now() == before
        assert ledger(payer) == "90.00"

    def test_a_used_key_on_another_endpoint_is_refused(self, teller_api, transfer, accounts):
        payer, _ = accounts
        post_json(teller_api, "/api/v1/transfers", transfer, key="k-3")

        response = post_json(
            teller_api,
            "/api/v1/withdrawals",
            {"account": payer.account_number, "amount": "10.00", "currency": "USD"},
            key="k-3",
        )

        assert_problem(response, 422, "idempotency.key_reused")
        assert ledger(payer) == "90.00"


class TestKeyHeader:
    def test_a_money_moving_post_without_a_key_is_refused(self, teller_api, transfer):
        before = LedgerRows.now()

        response = post_json(teller_api, "/api/v1/transfers", transfer, key=None)

        assert_problem(response, 400, "idempotency.key_missing")
        assert LedgerRows.now() == before

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/deposits",
            "/api/v1/withdrawals",
            "/api/v1/adjustments",
            "/api/v1/transactions/T000000000001/reverse",
            "/api/v1/transactions/T000000000001/approve",
            "/api/v1/accounts/000000000000/holds",
        ],
    )
    def test_every_money_moving_endpoint_requires_a_key(self, make_client, supervisor, path):
        body = {
            "/api/v1/deposits": {"account": "000000000000", "amount": "1.00", "currency": "USD"},
            "/api/v1/withdrawals": {"account": "000000000000", "amount": "1.00", "currency": "USD"},
            "/api/v1/adjustments": {
                "debit_account": "000000000000",
                "credit_account": "000000000001",
                "amount": "1.00",
                "currency": "USD",
            },
            "/api/v1/accounts/000000000000/holds": {
                "amount": "1.00",
                "currency": "USD",
                "reason": "lien",
            },
        }.get(path, {"reason": "x"} if path.endswith("reverse") else {})

        response = post_json(make_client(supervisor), path, body, key=None)

        assert_problem(response, 400, "idempotency.key_missing")

    @pytest.mark.parametrize(
        "key",
        ["k" * 256, "tab\there", "bell\x07", "ключ", "caf\u00e9"],
        ids=["too long", "tab", "control", "cyrillic", "latin-1"],
    )
    def test_a_malformed_key_is_refused(self, teller_api, transfer, key):
        before = LedgerRows.now()

        response = post_json(teller_api, "/api/v1/transfers", transfer, key=key)

        assert_problem(response, 400, "idempotency.key_invalid")
        assert LedgerRows.now() == before

    def test_a_key_of_255_printable_characters_is_fine(self, teller_api, transfer):
        response = post_json(teller_api, "/api/v1/transfers", transfer, key="~" * 255)

        assert response.status_code == 201, response.content


class TestWhatBurnsAKey:
    def test_a_request_refused_by_validation_leaves_the_key_unused(
        self, teller_api, transfer, accounts
    ):
        payer, _ = accounts
        refused = post_json(
            teller_api, "/api/v1/transfers", {**transfer, "amount": "1e2"}, key="k-4"
        )

        retried = post_json(teller_api, "/api/v1/transfers", transfer, key="k-4")

        assert refused.status_code == 400
        assert retried.status_code == 201, retried.content
        assert ledger(payer) == "90.00"

    def test_a_domain_refusal_rolls_back_so_the_key_can_be_retried_after_the_cause_is_fixed(
        self, bank, teller_api, transfer, accounts, post_movement
    ):
        payer, _ = accounts
        too_much = {**transfer, "amount": "150.00"}
        refused = post_json(teller_api, "/api/v1/transfers", too_much, key="k-5")
        post_movement("cash_deposit", bank.office_account("teller_cash"), payer, "50.00")

        retried = post_json(teller_api, "/api/v1/transfers", too_much, key="k-5")

        assert_problem(refused, 422, "ledger.insufficient_funds")
        assert retried.status_code == 201, retried.content
        assert ledger(payer) == "0.00"

    def test_an_expired_record_no_longer_holds_the_key(self, teller_api, transfer, accounts):
        payer, _ = accounts
        first = post_json(teller_api, "/api/v1/transfers", transfer, key="k-old")
        IdempotencyRecord.objects.filter(key="k-old").update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )

        again = post_json(teller_api, "/api/v1/transfers", transfer, key="k-old")

        assert again.status_code == 201
        assert not again.has_header("Idempotent-Replayed")
        assert again.json()["txn_id"] != first.json()["txn_id"]
        assert ledger(payer) == "80.00"


class TestInFlight:
    def test_a_key_locked_by_a_request_in_progress_is_answered_409_and_not_burned(
        self, teller, teller_api, transfer, accounts
    ):
        payer, _ = accounts
        claim = IdempotencyClaim.build(
            client_id=f"user:{teller.pk}",
            key="k-busy",
            method="POST",
            path="/api/v1/transfers",
            body=transfer,
        )
        # Another session holds the key's advisory lock, as the first request would.
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", [claim.lock_id])

            busy = post_json(teller_api, "/api/v1/transfers", transfer, key="k-busy")

        after = post_json(teller_api, "/api/v1/transfers", transfer, key="k-busy")

        assert_problem(busy, 409, "idempotency.in_flight")
        assert after.status_code == 201, after.content
        assert ledger(payer) == "90.00"


class TestPurge:
    def make_record(self, key: str, expires_at: dt.datetime) -> IdempotencyRecord:
        return IdempotencyRecord.objects.create(
            client_id="user:1",
            key=key,
            request_hash="0" * 64,
            method="POST",
            path="/api/v1/transfers",
            response_status=201,
            response_body=b"{}",
            response_content_type="application/json",
            created_at=expires_at - dt.timedelta(hours=48),
            expires_at=expires_at,
        )

    def test_expired_records_are_deleted_and_fresh_ones_kept(self, db):
        now = timezone.now()
        expired = self.make_record("expired", now - dt.timedelta(minutes=1))
        due_now = self.make_record("due-now", now)
        fresh = self.make_record("fresh", now + dt.timedelta(hours=1))

        deleted = services.idempotency_purge(now=now)

        assert deleted == 2
        remaining = set(IdempotencyRecord.objects.values_list("pk", flat=True))
        assert fresh.pk in remaining
        assert not {expired.pk, due_now.pk} & remaining

    def test_the_task_purges_with_the_current_time_and_can_run_twice(self, db):
        expired = self.make_record("expired", timezone.now() - dt.timedelta(hours=1))
        fresh = self.make_record("fresh", timezone.now() + dt.timedelta(hours=47))

        idempotency_purge_task()
        idempotency_purge_task()

        assert list(IdempotencyRecord.objects.filter(pk__in=[expired.pk, fresh.pk])) == [fresh]

    def test_the_task_is_a_late_acked_maintenance_task_scheduled_hourly(self):
        entry = settings.CELERY_BEAT_SCHEDULE["ledger-idempotency-purge"]

        assert entry["task"] == idempotency_purge_task.name == "ledger.idempotency_purge"
        assert entry["schedule"] == 3600.0
        assert celery_app.amqp.router.route({}, idempotency_purge_task.name)["queue"].name == (
            "maintenance"
        )
        assert idempotency_purge_task.ignore_result is True
        assert idempotency_purge_task.acks_late is True
