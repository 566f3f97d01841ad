"""``ledger_post`` takes a movement's event data and audit row ready-made, as plain values.

Measured one posting at a time (interleaved pgbench scripts against the same database), the
posting's two rows cost about 60 us of backend CPU more than plain INSERTs of the same
values: the whole event parsed as ``jsonb`` and rebuilt around the journal's identity, and the
audit content joined, hashed and parsed back into columns (audit 0006). Both came from one
fact: only this function knew the txn_id. Now the caller may draw it (``p_txn_id``;
``ledger.services.movement_post`` takes it with the accounts query, no extra round trip), so:

* ``p_audit`` is an ``audit_row`` (audit 0008) that the caller built and hashed for that
  txn_id like any other decision row; ``audit_row_insert`` writes it without parsing. A row
  naming another object is refused (``audit.object_mismatch``).
* ``p_event_data`` is the event's data as JSON text, whole but for ``journal_id`` and
  ``txn_id``, which are put in front of it; ``p_event`` then carries only the envelope
  (type, source, sequence, aggregate_id). Without ``p_event_data`` the function renders the
  legs and data from ``p_event`` as before (approvals, reversals, fee-charging movements);
  0010's ``p_event->'legs'`` path had one caller, which now sends the data text.

The body is 0010's with exactly these edits (each must match once); the signature changes
(``p_audit_prefix``/``p_audit_suffix`` go, ``p_event_data``, ``p_audit``, ``p_txn_id`` come).
"""

import importlib

from django.db import migrations

_previous = importlib.import_module("ledger.migrations.0010_ledger_post_caller_legs")
_edits = importlib.import_module("ledger.migrations.0009_ledger_post_audit_content")
PREVIOUS_SIGNATURE = _previous.SIGNATURE
SIGNATURE = _previous.SIGNATURE.replace("jsonb, text, text)", "jsonb, text, audit_row, text)")
assert SIGNATURE != PREVIOUS_SIGNATURE

_changed = _edits._changed

_PARAMS = """    p_event jsonb DEFAULT NULL, -- the outbox event announcing this posting
    p_audit_prefix text DEFAULT NULL,  -- the audit decision row's canonical content
    p_audit_suffix text DEFAULT NULL   -- before and after its object id (the txn_id)
"""
_PARAMS_NEW = """    p_event jsonb DEFAULT NULL, -- the outbox event announcing this posting (its envelope)
    p_event_data text DEFAULT NULL,  -- its data as JSON text, but journal_id and txn_id
    p_audit audit_row DEFAULT NULL,  -- the audit decision row (audit_row_insert)
    p_txn_id text DEFAULT NULL       -- the new journal's txn_id, when the caller drew it
"""

_LEGS_EVENT = """    IF p_event ? 'legs' THEN
        PERFORM outbox_enqueue(
            p_event->>'type', p_event->>'source', 'transaction',
            coalesce(p_event->>'aggregate_id', v_txn), (p_event->>'sequence')::bigint,
            p_now, p_business_date,
            coalesce(p_event->'data', '{}'::jsonb)
                || CASE WHEN p_event ? 'nest' THEN jsonb_build_object(p_event->>'nest', e.posted)
                        ELSE e.posted END)
          FROM (SELECT jsonb_build_object('txn_id', v_txn, 'journal_id', v_journal,
                                          'currency', p_currency,
                                          'legs', p_event->'legs') AS posted) e;
    ELSIF p_event IS NOT NULL THEN
"""
_TEXT_EVENT = """    IF p_event_data IS NOT NULL THEN
        -- jsonb sorts an object's keys, so the identity may go first in the text.
        PERFORM outbox_enqueue(
            p_event->>'type', p_event->>'source', 'transaction',
            coalesce(p_event->>'aggregate_id', v_txn), (p_event->>'sequence')::bigint,
            p_now, p_business_date,
            ('{"journal_id":' || v_journal || ',"txn_id":' || to_json(v_txn)::text || ','
             || substr(p_event_data, 2))::jsonb);
    ELSIF p_event IS NOT NULL THEN
"""

_AUDIT = """    IF p_audit_prefix IS NOT NULL THEN
        PERFORM audit_decision_insert(p_audit_prefix, p_audit_suffix, v_txn);
    END IF;
"""
_AUDIT_NEW = """    IF p_audit.content_hash IS NOT NULL THEN
        -- Built and hashed by the caller for the txn_id it drew: a row naming another
        -- transaction would put a false statement in the audit log.
        IF p_audit.object_id IS DISTINCT FROM v_txn THEN
            RAISE EXCEPTION 'audit.object_mismatch' USING DETAIL = json_build_object(
                'txn_id', v_txn, 'object_id', p_audit.object_id)::text;
        END IF;
        PERFORM audit_row_insert(p_audit);
    END IF;
"""

FUNCTION = _previous.FUNCTION
for _old, _new in (
    ("CREATE OR REPLACE FUNCTION ledger_post(", "CREATE FUNCTION ledger_post("),
    (_PARAMS, _PARAMS_NEW),
    (
        "    v_render_legs boolean := p_event IS NOT NULL AND NOT p_event ? 'legs';\n",
        "    v_render_legs boolean := p_event IS NOT NULL AND p_event_data IS NULL;\n",
    ),
    (
        "        VALUES ('T' || lpad(nextval('ledger_txn_seq')::text, 12, '0'), p_txn_type,",
        "        VALUES (coalesce(p_txn_id, 'T' || lpad(nextval('ledger_txn_seq')::text, 12, '0')),\n"
        "                p_txn_type,",
    ),
    (_LEGS_EVENT, _TEXT_EVENT),
    (_AUDIT, _AUDIT_NEW),
):
    FUNCTION = _changed(FUNCTION, _old, _new)

PREVIOUS_FUNCTION = _previous.FUNCTION.replace(
    "CREATE OR REPLACE FUNCTION ledger_post(", "CREATE FUNCTION ledger_post(", 1
)
FORWARD = f"DROP FUNCTION ledger_post{PREVIOUS_SIGNATURE};\n{FUNCTION}"
REVERSE = f"DROP FUNCTION ledger_post{SIGNATURE};\n{PREVIOUS_FUNCTION}"


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0010_ledger_post_caller_legs"),
        ("audit", "0008_audit_row_type_and_insert"),
    ]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
