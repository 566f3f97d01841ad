"""``ledger_post`` takes the audit decision row as its canonical content, not the row twice,
and writes the event with one statement.

``audit_decision_insert`` (audit migration 0006) now takes the canonical text before and
after the object id and reads the columns back from it, so ``p_audit`` (a JSON object
carrying every column beside that same text) becomes ``p_audit_prefix`` and
``p_audit_suffix``: two plain text arguments (a ``text[]`` would make the client escape every
quote of the JSON text into an array literal).

The event's legs, its data and the ``outbox_enqueue`` call were five PL/pgSQL statements;
they are one now, with the same result. Every statement and expression of a PL/pgSQL
function costs a posting its executor or expression set-up, because each posting is a
transaction of its own.

The body is 0008's with exactly these edits (each must match once); the rest is unchanged.
"""

import importlib

from django.db import migrations

_previous = importlib.import_module("ledger.migrations.0008_ledger_post_fewer_statements")
PREVIOUS_SIGNATURE = _previous.SIGNATURE
SIGNATURE = _previous.SIGNATURE.replace("jsonb, jsonb)", "jsonb, text, text)")


def _changed(text: str, old: str, new: str) -> str:
    # The snapshot is 0008's text with exact edits: each must match once, or this fails.
    assert text.count(old) == 1, old
    return text.replace(old, new)


# The event: one statement instead of five (each PL/pgSQL statement and expression costs a
# posting its executor or expression set-up); same legs, same data, same call.
_EVENT_BEFORE = """        v_exponent := coalesce((p_event->>'exponent')::integer, 2);
        v_scale := power(10::numeric, v_exponent);
        SELECT jsonb_agg(jsonb_build_object(
                   'account', v_numbers->>(l.acc::text),
                   'side', l.s,
                   'amount', round(l.amt::numeric / v_scale, v_exponent)::text,
                   'purpose', l.pur) ORDER BY l.ord)
          INTO v_legs
          FROM unnest(p_accounts, p_sides, p_amounts, p_purposes)
               WITH ORDINALITY AS l(acc, s, amt, pur, ord);
        v_data := jsonb_build_object('txn_id', v_txn, 'journal_id', v_journal,
                                     'currency', p_currency, 'legs', v_legs);
        IF p_event ? 'nest' THEN
            v_data := jsonb_build_object(p_event->>'nest', v_data);
        END IF;
        PERFORM outbox_enqueue(
            p_event->>'type', p_event->>'source', 'transaction',
            coalesce(p_event->>'aggregate_id', v_txn), (p_event->>'sequence')::bigint,
            p_now, p_business_date, coalesce(p_event->'data', '{}'::jsonb) || v_data);
"""
_EVENT_AFTER = """        PERFORM outbox_enqueue(
            p_event->>'type', p_event->>'source', 'transaction',
            coalesce(p_event->>'aggregate_id', v_txn), (p_event->>'sequence')::bigint,
            p_now, p_business_date,
            coalesce(p_event->'data', '{}'::jsonb)
                || CASE WHEN p_event ? 'nest' THEN jsonb_build_object(p_event->>'nest', e.posted)
                        ELSE e.posted END)
          FROM (SELECT jsonb_build_object(
                           'txn_id', v_txn, 'journal_id', v_journal, 'currency', p_currency,
                           'legs', jsonb_agg(jsonb_build_object(
                               'account', v_numbers->>(l.acc::text),
                               'side', l.s,
                               'amount', round(l.amt::numeric / power(10::numeric, x.exp),
                                               x.exp)::text,
                               'purpose', l.pur) ORDER BY l.ord)) AS posted
                  FROM (SELECT coalesce((p_event->>'exponent')::integer, 2) AS exp) x,
                       unnest(p_accounts, p_sides, p_amounts, p_purposes)
                           WITH ORDINALITY AS l(acc, s, amt, pur, ord)) e;
"""

FUNCTION = _previous.FUNCTION
for _old, _new in (
    (
        "    p_audit jsonb DEFAULT NULL  -- the audit decision row (audit_decision_insert), sans txn_id",
        "    p_audit_prefix text DEFAULT NULL,  -- the audit decision row's canonical content\n"
        "    p_audit_suffix text DEFAULT NULL   -- before and after its object id (the txn_id)",
    ),
    ("    IF p_audit IS NOT NULL THEN", "    IF p_audit_prefix IS NOT NULL THEN"),
    (
        "        PERFORM audit_decision_insert(p_audit, v_txn);",
        "        PERFORM audit_decision_insert(p_audit_prefix, p_audit_suffix, v_txn);",
    ),
    (_EVENT_BEFORE, _EVENT_AFTER),
    ("    v_legs jsonb;\n    v_scale numeric;\n    v_exponent integer;\n    v_data jsonb;\n", ""),
):
    FUNCTION = _changed(FUNCTION, _old, _new)

FORWARD = f"DROP FUNCTION ledger_post{PREVIOUS_SIGNATURE};\n{FUNCTION}"
REVERSE = f"DROP FUNCTION ledger_post{SIGNATURE};\n{_previous.FUNCTION}"


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_ledger_post_fewer_statements"),
        ("audit", "0006_decision_insert_from_content"),
    ]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
