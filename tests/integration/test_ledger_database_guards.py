"""The database refuses what the application must never do, even if the code is bypassed."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from ledger.models import Entry


def _raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.mark.django_db(transaction=True)
class TestDatabaseGuards:
    def test_an_unbalanced_journal_is_refused(self, bank, funded_account):
        saver = funded_account("10.00")
        journal_id = Entry.objects.filter(account=saver).values_list("journal_id", flat=True)[0]

        with pytest.raises(DatabaseError, match=r"ledger\.unbalanced_journal"):
            with transaction.atomic():
                _raw(
                    "INSERT INTO ledger_entry (journal_id, account_id, side, amount_minor, "
                    "currency, business_date, balance_after_minor, purpose) "
                    "VALUES (%s, %s, 'C', 1, 'USD', now()::date, 0, 'forged')",
                    [journal_id, saver.pk],
                )

        assert not Entry.objects.filter(purpose="forged").exists()

    def test_each_statement_must_leave_its_journals_balanced(self, bank, funded_account):
        # The check runs per statement: a journal cannot be built leg by leg, even if the
        # legs would balance by commit; both legs in one statement are accepted.
        saver = funded_account("10.00")
        cash = bank.office_account("teller_cash")
        journal_id = Entry.objects.filter(account=saver).values_list("journal_id", flat=True)[0]
        insert = (
            "INSERT INTO ledger_entry (journal_id, account_id, side, amount_minor, currency, "
            "business_date, balance_after_minor, purpose) VALUES {}"
        )
        leg = "(%s, %s, %s, 1, 'USD', now()::date, NULL, 'forged')"

        with pytest.raises(DatabaseError, match=r"ledger\.unbalanced_journal"):
            with transaction.atomic():
                _raw(insert.format(leg), [journal_id, saver.pk, "C"])
                _raw(insert.format(leg), [journal_id, cash.pk, "D"])
        assert not Entry.objects.filter(purpose="forged").exists()

        with transaction.atomic():
            _raw(
                insert.format(f"{leg}, {leg}"),
                [journal_id, saver.pk, "C", journal_id, cash.pk, "D"],
            )
        assert Entry.objects.filter(purpose="forged").count() == 2

    def test_posted_entries_cannot_be_updated(self, funded_account):
        saver = funded_account("10.00")
        entry = Entry.objects.filter(account=saver).first()

        with pytest.raises(DatabaseError, match=r"ledger\.entry_immutable"):
            with transaction.atomic():
                _raw("UPDATE ledger_entry SET amount_minor = 1 WHERE id = %s", [entry.pk])

        entry.refresh_from_db()
        assert entry.amount_minor == 1000

    def test_posted_entries_cannot_be_deleted(self, funded_account):
        saver = funded_account("10.00")

        with pytest.raises(DatabaseError, match=r"ledger\.entry_immutable"):
            with transaction.atomic():
                _raw("DELETE FROM ledger_entry WHERE account_id = %s", [saver.pk])

        assert Entry.objects.filter(account=saver).exists()

    def test_a_customer_balance_cannot_pass_its_overdraft_floor(self, funded_account):
        saver = funded_account("10.00")

        with pytest.raises(DatabaseError, match="balance_floor_overdraft"):
            with transaction.atomic():
                _raw(
                    "UPDATE ledger_balance SET ledger_minor = -1 WHERE account_id = %s", [saver.pk]
                )

    def test_ledger_verify_names_a_balance_that_drifted_from_its_entries(self, funded_account):
        saver = funded_account("10.00")
        _raw(
            "UPDATE ledger_balance SET ledger_minor = ledger_minor + 5 WHERE account_id = %s",
            [saver.pk],
        )

        with pytest.raises(CommandError):
            call_command("ledger_verify")


@pytest.mark.django_db
@pytest.mark.parametrize("function", ["ledger_post", "limits_consume"])
def test_posting_path_functions_plan_once_per_session(function):
    # A migration that recreates one of these must set the mode again (ledger migration 0008):
    # without it every posting pays for re-planning its statements.
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = %s", [function])
        configs = [row[0] for row in cursor.fetchall()]
    assert configs == [["plan_cache_mode=force_generic_plan"]]
