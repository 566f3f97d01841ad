"""The ledger's read endpoints: transactions, the approval queue, balances (as of a date),
statements with cursor pages, holds and the trial balance."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from banksim.core.money import Money
from ledger import services
from ledger.models import ApprovalThreshold
from tests.api.ledger_support import assert_problem, post_json, seat

NOV = {day: dt.date(2026, 11, day) for day in range(25, 31)}


def post_on(day: dt.date, txn_type: str, debit, credit, amount: str):
    """Post a movement on a given business date (batch channel: no maker-checker)."""
    return services.movement_execute(
        movement=services.Movement(
            txn_type=txn_type,
            debit_account_id=debit.pk,
            credit_account_id=credit.pk,
            amount=Money.parse(amount, debit.currency),
            channel="batch",
        ),
        actor=None,
        business_date=day,
        now=timezone.now(),
    )


@pytest.fixture
def auditor_api(make_client, auditor):
    return make_client(auditor)


@pytest.fixture
def saver_with_history(bank, open_account):
    """A savings account whose balance ends each business date at 100, 130, 135, 101."""
    saver = open_account()
    till = bank.office_account("teller_cash")
    post_on(NOV[27], "cash_deposit", till, saver, "100.00")  # 100.00
    post_on(NOV[28], "cash_deposit", till, saver, "50.00")  # 150.00
    post_on(NOV[28], "cash_withdrawal", saver, till, "20.00")  # 130.00
    post_on(NOV[29], "cash_deposit", till, saver, "5.00")  # 135.00
    post_on(NOV[30], "cash_withdrawal", saver, till, "35.00")  # 100.00
    post_on(NOV[30], "cash_deposit", till, saver, "1.00")  # 101.00
    return saver


class TestTransactionDetail:
    def test_reading_a_transaction_gives_what_posting_it_answered(
        self, bank, teller, make_client, auditor_api, funded_account, open_account
    ):
        seat(teller, bank.branch)
        payer = funded_account("100.00")
        posted = post_json(
            make_client(teller),
            "/api/v1/transfers",
            {
                "debit_account": payer.account_number,
                "credit_account": open_account().account_number,
                "amount": "12.34",
                "currency": "USD",
            },
        )

        response = auditor_api.get(f"/api/v1/transactions/{posted.json()['txn_id']}")

        assert response.status_code == 200, response.content
        assert response.json() == posted.json()

    @pytest.mark.parametrize("txn_id", ["T999999999999", "t000000000001", "T1", "x" * 40])
    def test_an_unknown_or_misshapen_id_is_not_found(self, bank, auditor_api, txn_id):
        response = auditor_api.get(f"/api/v1/transactions/{txn_id}")

        assert_problem(response, 404, "ledger.transaction_not_found")


class TestTransactionList:
    @pytest.fixture
    def queue(self, bank, teller, funded_account, open_account, post_movement):
        """Two entered transfers (oldest first) and one posted one."""
        payer = funded_account("9000.00")
        payee = open_account()
        posted = post_movement("transfer", payer, payee, "10.00", actor=teller)
        ApprovalThreshold.objects.create(currency="USD", channel="teller", amount_minor=100_000)
        first = post_movement("transfer", payer, payee, "1500.00", actor=teller)
        second = post_movement("transfer", payer, payee, "2500.00", actor=teller)
        return first.journal.txn_id, second.journal.txn_id, posted.journal.txn_id

    def test_the_approval_queue_lists_entered_transactions_oldest_first_in_pages(
        self, auditor_api, queue
    ):
        first, second, _ = queue

        page_one = auditor_api.get("/api/v1/transactions", {"status": "entered", "limit": "1"})
        page_two = auditor_api.get(
            "/api/v1/transactions", {"status": "entered", "limit": "1", "offset": "1"}
        )

        assert page_one.status_code == 200, page_one.content
        assert page_one.json()["count"] == 2
        assert [t["txn_id"] for t in page_one.json()["results"]] == [first]
        assert [t["txn_id"] for t in page_two.json()["results"]] == [second]
        assert page_two.json()["results"][0]["amount"] == "2500.00"
        assert page_two.json()["results"][0]["status"] == "entered"

    def test_without_a_status_every_transaction_is_listed(self, auditor_api, queue):
        response = auditor_api.get("/api/v1/transactions", {"limit": "100"})

        assert set(queue) <= {t["txn_id"] for t in response.json()["results"]}

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "pending"}, "status"),
            ({"limit": "0"}, "limit"),
            ({"limit": "1e2"}, "limit"),
            ({"sort": "amount"}, "sort"),
        ],
    )
    def test_bad_filters_are_refused(self, bank, auditor_api, params, field):
        response = auditor_api.get("/api/v1/transactions", params)

        assert_problem(response, 400, "validation_error", field)


class TestBalance:
    def test_the_current_balance_has_ledger_available_and_held(
        self, bank, teller, auditor_api, saver_with_history
    ):
        services.hold_place(
            account_id=saver_with_history.pk,
            amount=Money.parse("1.00", "USD"),
            reason="lien",
            expires_on=None,
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        response = auditor_api.get(f"/api/v1/accounts/{saver_with_history.account_number}/balance")

        assert response.status_code == 200, response.content
        assert response.json() == {
            "account_number": saver_with_history.account_number,
            "currency": "USD",
            "as_of": None,
            "ledger_balance": "101.00",
            "available_balance": "100.00",
            "held_balance": "1.00",
        }

    @pytest.mark.parametrize(
        ("as_of", "expected"),
        [
            ("2026-11-26", "0.00"),
            ("2026-11-27", "100.00"),
            ("2026-11-28", "130.00"),
            ("2026-11-29", "135.00"),
            ("2026-11-30", "101.00"),
            ("2027-01-01", "101.00"),
        ],
    )
    def test_as_of_gives_the_ledger_balance_at_the_end_of_that_business_date(
        self, auditor_api, saver_with_history, as_of, expected
    ):
        response = auditor_api.get(
            f"/api/v1/accounts/{saver_with_history.account_number}/balance", {"as_of": as_of}
        )

        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["as_of"], body["ledger_balance"]) == (as_of, expected)
        assert body["available_balance"] is None

    @pytest.mark.parametrize("as_of", ["20261130", "2026-11-31", "yesterday", "２０２６-11-30"])
    def test_a_malformed_date_is_refused(self, auditor_api, saver_with_history, as_of):
        response = auditor_api.get(
            f"/api/v1/accounts/{saver_with_history.account_number}/balance", {"as_of": as_of}
        )

        assert_problem(response, 400, "validation_error", "as_of")

    def test_an_unknown_account_is_not_found(self, bank, auditor_api):
        response = auditor_api.get("/api/v1/accounts/000000000000/balance")

        assert_problem(response, 404, "account.not_found")


class TestStatement:
    def pages(self, client, account, **params):
        """Follow next_cursor to the end; return the page bodies."""
        bodies = []
        query = {key: str(value) for key, value in params.items()}
        while True:
            response = client.get(f"/api/v1/accounts/{account.account_number}/statement", query)
            assert response.status_code == 200, response.content
            bodies.append(response.json())
            if bodies[-1]["next_cursor"] is None:
                return bodies
            query["cursor"] = bodies[-1]["next_cursor"]

    def test_a_range_over_pages_has_opening_running_and_closing_balances(
        self, auditor_api, saver_with_history
    ):
        bodies = self.pages(
            auditor_api, saver_with_history, **{"from": "2026-11-28", "to": "2026-11-30"}, limit=2
        )

        assert [len(body["lines"]) for body in bodies] == [2, 2, 1]
        assert {(b["opening_balance"], b["closing_balance"]) for b in bodies} == {
            ("100.00", "101.00")
        }
        lines = [line for body in bodies for line in body["lines"]]
        assert [(ln["business_date"], ln["side"], ln["amount"], ln["balance"]) for ln in lines] == [
            ("2026-11-28", "C", "50.00", "150.00"),
            ("2026-11-28", "D", "20.00", "130.00"),
            ("2026-11-29", "C", "5.00", "135.00"),
            ("2026-11-30", "D", "35.00", "100.00"),
            ("2026-11-30", "C", "1.00", "101.00"),
        ]
        running = Decimal(bodies[0]["opening_balance"])
        for line in lines:
            running += Decimal(line["amount"]) * (1 if line["side"] == "C" else -1)
            assert Decimal(line["balance"]) == running
        assert running == Decimal(bodies[-1]["closing_balance"])
        assert all(
            line["txn_id"].startswith("T") and line["purpose"] == "principal" for line in lines
        )

    def test_the_closing_balance_is_the_balance_at_the_end_of_the_range(
        self, auditor_api, saver_with_history
    ):
        (body,) = self.pages(
            auditor_api, saver_with_history, **{"from": "2026-11-28", "to": "2026-11-29"}
        )

        assert (body["opening_balance"], body["closing_balance"]) == ("100.00", "135.00")
        assert len(body["lines"]) == 3

    def test_without_a_range_the_statement_starts_at_zero(self, auditor_api, saver_with_history):
        (body,) = self.pages(auditor_api, saver_with_history)

        assert (body["opening_balance"], body["closing_balance"]) == ("0.00", "101.00")
        assert len(body["lines"]) == 6

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"cursor": "W10"}, "cursor"),  # base64 of "[]"
            ({"limit": "201"}, "limit"),
            ({"limit": "-1"}, "limit"),
            ({"from": "2026-11-30", "to": "2026-11-28"}, "to"),
            ({"from": "30/11/2026"}, "from"),
            ({"page": "2"}, "page"),
        ],
    )
    def test_bad_parameters_are_refused(self, auditor_api, saver_with_history, params, field):
        response = auditor_api.get(
            f"/api/v1/accounts/{saver_with_history.account_number}/statement", params
        )

        assert_problem(response, 400, "validation_error", field)


class TestHoldList:
    def test_holds_are_listed_newest_first_and_filter_by_status(
        self, bank, teller, auditor_api, funded_account
    ):
        saver = funded_account("100.00")
        common = dict(
            account_id=saver.pk,
            expires_on=None,
            actor=teller,
            business_date=bank.business_date,
            now=timezone.now(),
        )
        older = services.hold_place(amount=Money.parse("5.00", "USD"), reason="older", **common)
        newer = services.hold_place(amount=Money.parse("7.00", "USD"), reason="newer", **common)
        services.hold_release(hold_id=older.pk, actor=teller, now=timezone.now())

        everything = auditor_api.get(f"/api/v1/accounts/{saver.account_number}/holds")
        active = auditor_api.get(
            f"/api/v1/accounts/{saver.account_number}/holds", {"status": "active"}
        )

        assert everything.status_code == 200, everything.content
        assert [(h["id"], h["status"]) for h in everything.json()["results"]] == [
            (newer.pk, "active"),
            (older.pk, "released"),
        ]
        assert [h["amount"] for h in active.json()["results"]] == ["7.00"]


class TestTrialBalance:
    def test_each_currency_nets_to_zero_and_splits_debit_and_credit_balances(
        self, bank, auditor_api, saver_with_history, open_account, post_movement
    ):
        overdrawn = open_account("CAA-USD")
        post_movement("cash_withdrawal", overdrawn, bank.office_account("teller_cash"), "40.00")
        yen = open_account("SBA-JPY")
        post_movement("cash_deposit", bank.office_account("teller_cash", "JPY"), yen, "1500")

        response = auditor_api.get("/api/v1/reports/trial-balance")

        assert response.status_code == 200, response.content
        by_currency = {c["currency"]: c for c in response.json()["currencies"]}
        usd = by_currency["USD"]
        assert (usd["debit"], usd["credit"], usd["net"]) == ("101.00", "101.00", "0.00")
        lines = {line["gl_subhead"]: line for line in usd["lines"]}
        # The till holds 101.00 of deposits minus 40.00 paid out: a 61.00 debit balance.
        assert (lines["10200"]["debit"], lines["10200"]["credit"]) == ("61.00", "0.00")
        assert (lines["20100"]["debit"], lines["20100"]["credit"]) == ("0.00", "101.00")
        assert (lines["20200"]["debit"], lines["20200"]["credit"]) == ("40.00", "0.00")
        assert lines["20200"]["net"] == "-40.00"
        jpy = by_currency["JPY"]
        assert (jpy["debit"], jpy["credit"], jpy["net"]) == ("1500", "1500", "0")

    def test_one_currency_can_be_asked_for(self, bank, auditor_api, funded_account):
        funded_account("5.000", "SBA-KWD")

        response = auditor_api.get("/api/v1/reports/trial-balance", {"currency": "KWD"})

        assert response.status_code == 200, response.content
        (kwd,) = response.json()["currencies"]
        assert (kwd["currency"], kwd["debit"], kwd["credit"], kwd["net"]) == (
            "KWD",
            "5.000",
            "5.000",
            "0.000",
        )

    @pytest.mark.parametrize("currency", ["usd", "XYZ", "US"])
    def test_an_unknown_currency_is_refused(self, bank, auditor_api, currency):
        response = auditor_api.get("/api/v1/reports/trial-balance", {"currency": currency})

        assert_problem(response, 400, "validation_error", "currency")
