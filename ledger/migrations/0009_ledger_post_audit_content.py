"""``ledger_post`` takes the audit decision row as its canonical content, not the row twice.

``audit_decision_insert`` (audit migration 0006) now takes the canonical text before and
after the object id and reads the columns back from it, so ``p_audit`` (a JSON object
carrying every column beside that same text) becomes ``p_audit_prefix`` and
``p_audit_suffix``: two plain text arguments (a ``text[]`` would make the client escape every
quote of the JSON text into an array literal). The body is 0008's with the three lines that
name them changed; everything else is unchanged.
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
