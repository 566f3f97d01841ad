"""The audit log's hash chain and its defences.

Tampering is done the way only a database superuser can: with triggers switched off
(``session_replication_role = replica``). ``audit_verify`` must then name the first broken row.
The application's own role (``banksim_app``) must not be able to change a row at all.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.context import batch_context
from audit.models import AuditChainHead, AuditLog
from audit.services import (
    CONTENT_FIELDS,
    GENESIS_HASH,
    audit_chain_report,
    audit_chain_violations,
    audit_record,
    audit_seal,
    chain_hash,
    content_hash,
)

pytestmark = pytest.mark.django_db

TABLE = AuditLog._meta.db_table


def record(count: int, job: str = "chain-test") -> list[int]:
    """Write ``count`` decision rows in one committed (or test-wrapped) transaction."""
    with batch_context(job) as context, transaction.atomic():
        for step in range(count):
            audit_record(action=f"test.step{step}", object_type="test", object_id=str(step))
    return list(
        AuditLog.objects.filter(request_id=context.request_id)
        .order_by("id")
        .values_list("id", flat=True)
    )


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@contextmanager
def triggers_off() -> Iterator[None]:
    """What a superuser can do: skip every trigger of this session."""
    sql("SET session_replication_role = replica")
    try:
        yield
    finally:
        sql("SET session_replication_role = DEFAULT")


@contextmanager
def as_app_role() -> Iterator[None]:
    sql("SET ROLE banksim_app")
    try:
        yield
    finally:
        sql("RESET ROLE")


def refused(statement: str, params: list | None = None) -> str:
    """Run a statement that must fail; return the database's message (in a savepoint)."""
    with pytest.raises(DatabaseError) as failure, transaction.atomic():
        sql(statement, params)
    return str(failure.value)


def first_violation():
    violations = audit_chain_violations()
    assert violations, "tampering went unnoticed"
    return violations[0]


class TestSealing:
    def test_sealing_chains_rows_in_id_order_from_the_genesis_hash(self):
        ids = record(3)

        audit_seal()

        rows = list(AuditLog.objects.filter(id__in=ids).order_by("id"))
        seqs = [r.chain_seq for r in rows]
        assert seqs == list(range(seqs[0], seqs[0] + 3))
        for before, row in itertools.pairwise(rows):
            assert row.prev_hash == before.row_hash
        first = rows[0]
        if first.chain_seq == 1:
            assert first.prev_hash == GENESIS_HASH
        assert first.row_hash == chain_hash(
            seq=first.chain_seq, row_id=first.pk, content=first.content_hash, prev=first.prev_hash
        )
        head = AuditChainHead.objects.get()
        assert (head.last_seq, head.last_hash) == (rows[-1].chain_seq, rows[-1].row_hash)

    def test_an_intact_chain_has_no_violations_and_the_command_says_ok(self, capsys):
        record(4)

        violations = audit_chain_violations()
        call_command("audit_verify")

        assert violations == []
        assert "audit_verify: OK" in capsys.readouterr().out

    def test_sealing_twice_seals_nothing_more(self):
        record(2)
        audit_seal()

        assert audit_seal() == 0

    def test_rows_not_yet_sealed_are_reported_as_pending_by_a_no_seal_check(self):
        audit_seal()
        record(2)

        report = audit_chain_report(seal=False)

        assert report.unsealed == 2
        assert report.violations == []


class TestTamperingIsDetected:
    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("actor", "someone_else"),
            ("outcome", "refused"),
            ("object_id", "999"),
            ("details", '{"forged": true}'),
            ("at", "2020-01-01T00:00:00Z"),
        ],
    )
    def test_an_edited_row_is_named(self, column, value):
        ids = record(5)
        audit_seal()

        with triggers_off():
            sql(f"UPDATE {TABLE} SET {column} = %s WHERE id = %s", [value, ids[2]])

        violation = first_violation()
        assert (violation.row_id, violation.problem) == (ids[2], "content")

    def test_an_edit_with_a_recomputed_content_hash_still_breaks_the_chain_at_that_row(self):
        from audit.services import CONTENT_FIELDS, content_hash

        ids = record(5)
        audit_seal()
        forged = AuditLog.objects.filter(id=ids[1]).values(*CONTENT_FIELDS).get()
        forged["actor"] = "someone_else"

        with triggers_off():
            sql(
                f"UPDATE {TABLE} SET actor = %s, content_hash = %s WHERE id = %s",
                ["someone_else", content_hash(forged), ids[1]],
            )

        violation = first_violation()
        assert (violation.row_id, violation.problem) == (ids[1], "hash")

    def test_a_deleted_row_is_named_by_the_row_after_it(self, capsys):
        ids = record(5)
        audit_seal()
        deleted_seq = AuditLog.objects.get(id=ids[2]).chain_seq

        with triggers_off():
            sql(f"DELETE FROM {TABLE} WHERE id = %s", [ids[2]])

        violation = first_violation()
        assert (violation.row_id, violation.seq) == (ids[3], deleted_seq + 1)
        assert "missing" in violation.detail
        with pytest.raises(CommandError, match=f"row id {ids[3]} "):
            call_command("audit_verify")

    def test_the_newest_row_deleted_is_caught_by_the_chain_head(self):
        ids = record(3)
        audit_seal()
        last_seq = AuditLog.objects.get(id=ids[-1]).chain_seq

        with triggers_off():
            sql(f"DELETE FROM {TABLE} WHERE id = %s", [ids[-1]])

        violation = first_violation()
        assert (violation.row_id, violation.seq, violation.problem) == (None, last_seq, "missing")

    def test_two_rows_swapped_in_the_chain_are_caught_at_the_first_moved_row(self):
        ids = record(5)
        audit_seal()
        seq_1, seq_2 = (AuditLog.objects.get(id=i).chain_seq for i in (ids[1], ids[2]))

        with triggers_off():
            sql(f"UPDATE {TABLE} SET chain_seq = -1 WHERE id = %s", [ids[1]])
            sql(f"UPDATE {TABLE} SET chain_seq = %s WHERE id = %s", [seq_1, ids[2]])
            sql(f"UPDATE {TABLE} SET chain_seq = %s WHERE id = %s", [seq_2, ids[1]])

        violation = first_violation()
        assert (violation.row_id, violation.seq) == (ids[2], seq_1)

    def test_two_rows_swapped_by_id_are_caught_at_the_first_of_them(self):
        ids = record(5)
        audit_seal()
        seq_1 = AuditLog.objects.get(id=ids[1]).chain_seq

        with triggers_off():
            sql(f"UPDATE {TABLE} SET id = -1 WHERE id = %s", [ids[1]])
            sql(f"UPDATE {TABLE} SET id = %s WHERE id = %s", [ids[1], ids[2]])
            sql(f"UPDATE {TABLE} SET id = %s WHERE id = -1", [ids[2]])

        violation = first_violation()
        assert violation.seq == seq_1

    def test_a_row_taken_out_of_the_chain_is_caught(self):
        ids = record(4)
        audit_seal()

        with triggers_off():
            sql(f"UPDATE {TABLE} SET chain_seq = NULL WHERE id = %s", [ids[1]])

        violation = first_violation()
        assert violation.row_id == ids[2]


class TestTheDatabaseRefusesChanges:
    def test_even_a_superuser_cannot_update_or_delete_with_the_triggers_on(self):
        [sealed, unsealed] = record(2)
        audit_seal(max_rows=1)  # seals only the older row

        assert "audit.append_only" in refused(
            f"UPDATE {TABLE} SET actor = 'x' WHERE id = %s", [sealed]
        )
        assert "audit.append_only" in refused(
            f"UPDATE {TABLE} SET row_hash = repeat('0', 64) WHERE id = %s", [sealed]
        )
        assert "audit.append_only" in refused(
            f"UPDATE {TABLE} SET actor = 'x' WHERE id = %s", [unsealed]
        )
        assert "audit.append_only" in refused(f"DELETE FROM {TABLE} WHERE id = %s", [unsealed])

    @pytest.mark.parametrize(
        ("column", "value"),
        [("kind", "whim"), ("outcome", "maybe"), ("status_code", -1)],
    )
    def test_columns_outside_their_rule_are_refused(self, column, value):
        # kind, outcome and status_code are checked by domain types (migrations 0005, 0007).
        columns = {
            "at": "now()",
            "kind": "'decision'",
            "channel": "'direct'",
            "actor": "''",
            "role": "''",
            "action": "'test.domain'",
            "object_type": "''",
            "object_id": "''",
            "request_id": "''",
            "outcome": "'success'",
            "status_code": "NULL",
            "error_code": "''",
            "source_ip": "''",
            "details": "'{}'",
            "content_hash": "''",
        }
        columns[column] = "%s"

        message = refused(
            f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(columns.values())})",
            [value],
        )

        assert "violates check constraint" in message

    def test_sealing_may_not_change_content_on_the_way(self):
        [row_id] = record(1)

        message = refused(
            f"UPDATE {TABLE} SET chain_seq = -5, prev_hash = 'a', row_hash = 'b', actor = 'x' "
            "WHERE id = %s",
            [row_id],
        )

        assert "audit.append_only" in message

    @pytest.mark.parametrize(
        "statement",
        [
            f"UPDATE {TABLE} SET actor = 'x' WHERE id = %s",
            f"UPDATE {TABLE} SET row_hash = 'forged', prev_hash = 'x', chain_seq = -1 "
            "WHERE id = %s",
            f"DELETE FROM {TABLE} WHERE id = %s",
            f"TRUNCATE {TABLE}",
            "UPDATE audit_auditchainhead SET last_seq = 0",
        ],
    )
    def test_the_application_role_has_no_privilege_to_change_the_log(self, statement):
        [row_id] = record(1)

        with as_app_role():
            message = refused(statement, [row_id] if "%s" in statement else None)

        assert "permission denied" in message

    def test_the_application_role_can_insert_read_and_seal(self):
        with as_app_role():
            ids = record(2)
            sealed = audit_seal()
            violations = audit_chain_violations(seal=False)

        assert sealed >= 2
        assert AuditLog.objects.filter(id__in=ids, row_hash__isnull=False).count() == 2
        assert violations == []


@pytest.mark.django_db(transaction=True)
class TestSealingWithConcurrentTransactions:
    def test_a_row_committed_late_is_sealed_after_rows_sealed_before_it(self):
        """Ids are handed out at INSERT, commits happen in any order: the chain follows the
        order rows are sealed in, so a slow transaction never leaves a hole behind it."""
        inserted, release = threading.Event(), threading.Event()

        def slow_transaction() -> None:
            try:
                with batch_context("slow"), transaction.atomic():
                    audit_record(action="test.slow", object_type="test", object_id="slow")
                    inserted.set()
                    release.wait(10)
            finally:
                connection.close()

        worker = threading.Thread(target=slow_transaction)
        worker.start()
        assert inserted.wait(10)
        [fast_id] = record(1, job="fast")
        audit_seal()
        release.set()
        worker.join(10)

        audit_seal()

        slow = AuditLog.objects.get(action="test.slow")
        fast = AuditLog.objects.get(id=fast_id)
        assert slow.pk < fast.pk
        assert slow.chain_seq == fast.chain_seq + 1
        assert audit_chain_violations() == []

    def test_concurrent_sealers_never_give_two_rows_one_position(self):
        record(200)
        errors: list[BaseException] = []

        def seal() -> None:
            try:
                audit_seal(max_rows=7)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        sealers = [threading.Thread(target=seal) for _ in range(4)]
        for sealer in sealers:
            sealer.start()
        for sealer in sealers:
            sealer.join(30)

        assert errors == []
        assert AuditLog.objects.filter(row_hash__isnull=True).count() == 0
        assert audit_chain_violations() == []


class TestDecisionRowsWrittenInSql:
    """``audit_row_insert`` (called by ``ledger_post``) must write what ``audit_record``
    would: the same columns and the same content hash, so the chain verifies either way."""

    def _written_both_ways(self, details: dict) -> tuple[AuditLog, AuditLog]:
        from audit.services import audit_decision_row

        with batch_context("sql-row") as context, transaction.atomic():
            audit_record(action="test.both", object_type="test", object_id="T0042", details=details)
            row = audit_decision_row(
                action="test.both", object_type="test", object_id="T0042", details=details
            )
            sql("SELECT audit_row_insert(%s::audit_row)", [row])
        python_row, sql_row = AuditLog.objects.filter(request_id=context.request_id).order_by("id")
        return python_row, sql_row

    def test_a_row_written_in_sql_matches_the_row_python_writes_and_verifies(self):
        details = {"amount": "1.50", "note": 'caf\u00e9 \u20ac "quoted" \\ back\u0000slash'}
        python_row, sql_row = self._written_both_ways(details)

        columns = [f.name for f in AuditLog._meta.concrete_fields if f.name not in ("id", "at")]
        assert {c: getattr(sql_row, c) for c in columns} == {
            c: getattr(python_row, c) for c in columns
        } | {"content_hash": sql_row.content_hash}
        assert sql_row.content_hash == content_hash(
            {name: getattr(sql_row, name) for name in CONTENT_FIELDS}
        )
        audit_seal()
        assert audit_chain_violations() == []

    def test_the_content_hash_is_the_documented_canonical_json_of_the_row(self):
        python_row, sql_row = self._written_both_ways({"amount": "2.00", "z": [1, {"b": 2}]})

        for row in (python_row, sql_row):
            at = row.at.astimezone(datetime.UTC).isoformat(timespec="microseconds")
            values = [getattr(row, name) for name in CONTENT_FIELDS[1:]]
            canonical = json.dumps(
                ["v1", at, *values], sort_keys=True, separators=(",", ":"), ensure_ascii=True
            )
            assert row.content_hash == hashlib.sha256(canonical.encode()).hexdigest()

    @pytest.mark.parametrize(
        ("valid", "invalid"), [('"decision"', '"bogus"'), ('"success"', '"maybe"')]
    )
    def test_a_row_outside_the_columns_rules_is_refused(self, valid, invalid):
        from audit.services import audit_decision_row

        row = audit_decision_row(action="test.odd", object_type="test", object_id="T1")
        assert row.count(valid) == 1

        message = refused("SELECT audit_row_insert(%s::audit_row)", [row.replace(valid, invalid)])

        assert "violates check constraint" in message
        assert not AuditLog.objects.filter(action="test.odd").exists()

    def test_a_posting_writes_its_decision_row_with_its_txn_id(
        self, bank, funded_account, open_account
    ):
        from django.utils import timezone

        from banksim.core.money import Money
        from ledger.services import Movement, movement_execute

        payer, payee = funded_account("20.00"), open_account()
        result = movement_execute(
            movement=Movement(
                txn_type="transfer",
                debit_account_id=payer.pk,
                credit_account_id=payee.pk,
                amount=Money.parse("2.50", "USD"),
                channel="teller",
            ),
            actor=None,
            business_date=bank.business_date,
            now=timezone.now(),
        )

        [row] = AuditLog.objects.filter(
            action="transaction.posted", details__credit_account=payee.account_number
        )
        assert (row.object_type, row.object_id) == ("transaction", result.journal.txn_id)
        audit_seal()
        assert audit_chain_violations() == []

    def test_a_posting_refuses_a_row_about_another_transaction(
        self, bank, funded_account, open_account
    ):
        from django.utils import timezone

        from audit.services import audit_decision_row
        from banksim.core.money import Money
        from ledger.posting import Leg, journal_post

        payer, payee = funded_account("5.00"), open_account()
        amount = Money.parse("1.00", "USD")
        row = audit_decision_row(
            action="transaction.posted", object_type="transaction", object_id="T999999999999"
        )

        with pytest.raises(DatabaseError) as refusal, transaction.atomic():
            journal_post(
                legs=[Leg(payer.pk, "D", amount), Leg(payee.pk, "C", amount)],
                txn_type="transfer",
                channel="teller",
                business_date=bank.business_date,
                now=timezone.now(),
                audit=row,
                txn_id="T999999999998",
            )

        assert "audit.object_mismatch" in str(refusal.value)
        assert not AuditLog.objects.filter(object_id__startswith="T99999999999").exists()
