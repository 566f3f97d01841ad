"""``audit_decision_insert(row, object_id)``: write a decision row from inside a SQL function.

A posting's audit row names its transaction, whose id only ``ledger_post`` knows, so the
application used to write it with a second statement after the posting returned. This lets
the posting function write it in the same statement: the application builds the row
(``audit.services.audit_decision_row``) with its canonical content split around the object
id, and this function puts the id in, hashes the content exactly as ``content_hash`` does
(``sha256`` of ``prefix || json(object_id) || suffix``, ASCII) and inserts the row. The chain
itself is untouched: ``audit_seal`` links the row later, like any other.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION audit_decision_insert(p_row jsonb, p_object_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- PostgreSQL's to_json and Python's json.dumps escape only plain ASCII the same way.
    IF p_object_id !~ '^[A-Za-z0-9._:-]{1,64}$' THEN
        RAISE EXCEPTION 'audit.object_id_not_plain'
            USING DETAIL = json_build_object('object_id', left(p_object_id, 64))::text;
    END IF;
    INSERT INTO audit_auditlog (at, kind, channel, actor, actor_user_id, role, action,
                                object_type, object_id, request_id, outcome, status_code,
                                error_code, source_ip, details, content_hash)
    VALUES ((p_row->>'at')::timestamptz, p_row->>'kind', p_row->>'channel', p_row->>'actor',
            (p_row->>'actor_user_id')::bigint, p_row->>'role', p_row->>'action',
            p_row->>'object_type', p_object_id, p_row->>'request_id', p_row->>'outcome',
            (p_row->>'status_code')::smallint, p_row->>'error_code', p_row->>'source_ip',
            p_row->'details',
            encode(sha256(convert_to(
                (p_row->>'content_prefix') || to_json(p_object_id)::text
                    || (p_row->>'content_suffix'),
                'UTF8')), 'hex'));
END;
$$;
"""

REVERSE = "DROP FUNCTION audit_decision_insert(jsonb, text);"


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_application_role_and_grants")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
