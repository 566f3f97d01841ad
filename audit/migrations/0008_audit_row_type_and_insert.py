"""``audit_row``, a decision row as one value, and ``audit_row_insert``, which writes it as is.

A posted movement's decision row used to reach ``ledger_post`` as its canonical content split
around the txn_id, which only that function knew; ``audit_decision_insert`` (0006) joined,
hashed and parsed the text back into columns. Parsing and hashing it in SQL cost a posting
about 40 us of backend CPU, more than the row's plain INSERT (measured one posting at a time,
interleaved pgbench scripts). Now ``movement_post`` learns the txn_id before it posts (the
accounts query draws it), so the row is built and hashed in Python exactly like every other
decision row (``audit.services``) and reaches ``ledger_post`` as an ``audit_row``: typed values
the client sends as plain parameters, inserted without any parsing. ``audit_decision_insert``
goes in 0009, once ``ledger_post`` no longer calls it.

The fields are the audit log's content columns in ``CONTENT_FIELDS`` order, then
``content_hash``; the columns' domains (``audit_kind``, ``audit_outcome``, ``audit_status_code``)
still check the values on insert.
"""

from django.db import migrations

FORWARD = r"""
CREATE TYPE audit_row AS (
    at timestamptz,
    kind text,
    channel text,
    actor text,
    actor_user_id bigint,
    role text,
    action text,
    object_type text,
    object_id text,
    request_id text,
    outcome text,
    status_code smallint,
    error_code text,
    source_ip text,
    details jsonb,
    content_hash text
);

CREATE FUNCTION audit_row_insert(p_row audit_row) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_auditlog (at, kind, channel, actor, actor_user_id, role, action,
                                object_type, object_id, request_id, outcome, status_code,
                                error_code, source_ip, details, content_hash)
    VALUES (p_row.at, p_row.kind, p_row.channel, p_row.actor, p_row.actor_user_id, p_row.role,
            p_row.action, p_row.object_type, p_row.object_id, p_row.request_id, p_row.outcome,
            p_row.status_code, p_row.error_code, p_row.source_ip, p_row.details,
            p_row.content_hash);
END;
$$;
"""

REVERSE = r"""
DROP FUNCTION audit_row_insert(audit_row);
DROP TYPE audit_row;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_status_code_domain")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
