"""Daily limits under contention: 32 concurrent debits of L/4 against a daily limit L.

Each thread has its own database connection and its own transaction, and all start together
at a barrier, so the debits really race for the same usage row. Exactly four fit, whatever
the interleaving, and the same holds independently on each side of a business-date rollover.
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, transaction
from django.utils import timezone

import ledger.services
from banksim.core.money import Money
from limits import services
from limits.errors import DailyLimitExceeded
from limits.models import LimitUsage
from limits.services import LimitRuleSpec
from tests.factories import BUSINESS_DATE

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 32
LIMIT = Money.parse("1000.00", "USD")
QUARTER = Money.parse("250.00", "USD")
NEXT_DAY = BUSINESS_DATE + dt.timedelta(days=1)


def race(attempts: list[Callable[[], object]]) -> Counter[str]:
    """Run every attempt on its own thread and connection at once; count the outcomes."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(attempt: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            attempt()
            outcome = "ok"
        except DailyLimitExceeded:
            outcome = "refused"
        except Exception as exc:  # any other failure must show in the assertion
            outcome = f"error: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(attempt,)) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return Counter(outcomes)


def debit(account_id: int, business_date: dt.date) -> Callable[[], object]:
    def attempt() -> object:
        with transaction.atomic(durable=True):
            return services.limit_consume(
                account_id=account_id,
                amount=QUARTER,
                channel="api",
                txn_type="transfer",
                business_date=business_date,
            )

    return attempt


@pytest.fixture
def daily_limit(bank):
    return services.limit_rule_create(
        spec=LimitRuleSpec(currency="USD", max_amount=LIMIT, name="race limit"),
        actor=None,
        now=timezone.now(),
    )


def usage(rule, subject_id: int, on: dt.date) -> tuple[int, int]:
    row = LimitUsage.objects.get(rule=rule, subject_id=subject_id, business_date=on)
    return row.used_amount_minor, row.used_count


class TestConcurrentDebitsAgainstOneLimit:
    def test_exactly_four_quarter_debits_fit_and_usage_is_the_limit(
        self, bank, open_account, daily_limit
    ):
        payer = open_account("SBA-USD")

        outcomes = race([debit(payer.pk, BUSINESS_DATE) for _ in range(THREADS)])

        assert outcomes == Counter({"ok": 4, "refused": THREADS - 4})
        assert usage(daily_limit, payer.pk, BUSINESS_DATE) == (LIMIT.minor, 4)

    def test_each_side_of_a_business_date_rollover_gets_its_own_four(
        self, bank, open_account, daily_limit
    ):
        payer = open_account("SBA-USD")
        attempts = [
            debit(payer.pk, BUSINESS_DATE if i % 2 == 0 else NEXT_DAY) for i in range(THREADS)
        ]

        outcomes = race(attempts)

        assert outcomes == Counter({"ok": 8, "refused": THREADS - 8})
        assert usage(daily_limit, payer.pk, BUSINESS_DATE) == (LIMIT.minor, 4)
        assert usage(daily_limit, payer.pk, NEXT_DAY) == (LIMIT.minor, 4)


_WIRED = "limit_consume" in inspect.getsource(ledger.services)


@pytest.mark.skipif(not _WIRED, reason="movement_post does not call limit_consume yet")
class TestConcurrentTransfersAgainstOneLimit:
    def test_exactly_four_quarter_transfers_post_and_the_payer_loses_the_limit(
        self, bank, funded_account, open_account, daily_limit
    ):
        from ledger.models import AccountBalance
        from ledger.services import Movement, movement_execute

        payer = funded_account("10000.00")
        payee = open_account("SBA-USD")

        def transfer(business_date: dt.date) -> Callable[[], object]:
            def attempt() -> object:
                return movement_execute(
                    movement=Movement(
                        txn_type="transfer",
                        debit_account_id=payer.pk,
                        credit_account_id=payee.pk,
                        amount=QUARTER,
                        channel="api",
                    ),
                    actor=None,
                    business_date=business_date,
                    now=timezone.now(),
                )

            return attempt

        outcomes = race(
            [transfer(BUSINESS_DATE if i % 2 == 0 else NEXT_DAY) for i in range(THREADS)]
        )

        assert outcomes == Counter({"ok": 8, "refused": THREADS - 8})
        assert usage(daily_limit, payer.pk, BUSINESS_DATE) == (LIMIT.minor, 4)
        assert usage(daily_limit, payer.pk, NEXT_DAY) == (LIMIT.minor, 4)
        assert AccountBalance.objects.get(account=payee).ledger_minor == 2 * LIMIT.minor
