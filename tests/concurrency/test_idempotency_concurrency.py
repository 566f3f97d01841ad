"""Fifty clients retry the same transfer with one Idempotency-Key at the same instant, through the
real view stack, each on its own database connection: the money moves exactly once."""

import threading
from collections import Counter

import pytest
from django.db import connection

from accounts.models import Account
from ledger.models import IdempotencyRecord, Journal
from ledger.selectors import balance_snapshot, ledger_violations

THREADS = 50


@pytest.mark.django_db(transaction=True)
def test_one_key_posted_by_fifty_threads_at_once_moves_money_exactly_once(
    teller, make_client, funded_account, open_account
):
    payer = funded_account("100.00")
    payee = open_account()
    body = {
        "debit_account": payer.account_number,
        "credit_account": payee.account_number,
        "amount": "10.00",
        "currency": "USD",
        "narration": "one key, fifty tries",
    }
    clients = [make_client(teller) for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    answers: list[tuple[int, bytes, str | None, str | None]] = [None] * THREADS  # type: ignore[list-item]
    failures: list[BaseException] = []

    def attempt(index: int) -> None:
        try:
            start.wait(timeout=30)
            response = clients[index].post(
                "/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="fifty-at-once"
            )
            code = response.json().get("code") if response.status_code >= 400 else None
            answers[index] = (
                response.status_code,
                response.content,
                code,
                response.headers.get("Idempotent-Replayed"),
            )
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    statuses = Counter((status, code) for status, _, code, _ in answers)
    assert set(statuses) <= {(201, None), (409, "idempotency.in_flight")}, statuses
    created = [answer for answer in answers if answer[0] == 201]
    originals = [answer for answer in created if answer[3] != "true"]
    assert len(originals) == 1, statuses
    assert {content for _, content, _, _ in created} == {originals[0][1]}
    assert Journal.objects.filter(narration="one key, fifty tries").count() == 1
    assert IdempotencyRecord.objects.filter(key="fifty-at-once").count() == 1
    assert balance_snapshot(account_id=payer.pk).ledger.to_wire() == "90.00"
    assert balance_snapshot(account_id=payee.pk).ledger.to_wire() == "10.00"
    assert Account.objects.filter(pk__in=[payer.pk, payee.pk]).count() == 2
    assert ledger_violations() == []
