"""``audit_decision_insert(prefix, suffix, object_id)``: the row's columns come from the text
it hashes.

Migration 0004's function took the row twice: its columns as a JSON object and its canonical
content as the text before and after the object id. Now it takes only the canonical content
(``audit.services.audit_decision_row``), joins it around the id, hashes it, and reads every
column back from that same text (one JSON parse): half the bytes per posting, no second
serialisation in Python, and the stored columns cannot differ from what was hashed.
"""

import importlib

from django.db import migrations

_previous = importlib.import_module("audit.migrations.0004_decision_insert_function")

FORWARD = r"""
DROP FUNCTION audit_decision_insert(jsonb, text);

CREATE FUNCTION audit_decision_insert(p_prefix text, p_suffix text, p_object_id text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_content text;
    v jsonb;
BEGIN
    -- PostgreSQL's to_json and Python's json.dumps escape only plain ASCII the same way.
    IF p_object_id !~ '^[A-Za-z0-9._:-]{1,64}$' THEN
        RAISE EXCEPTION 'audit.object_id_not_plain'
            USING DETAIL = json_build_object('object_id', left(p_object_id, 64))::text;
    END IF;
    v_content := p_prefix || to_json(p_object_id)::text || p_suffix;
    -- ["v1", at, kind, channel, actor, actor_user_id, role, action, object_type, object_id,
    --  request_id, outcome, status_code, error_code, source_ip, details]
    v := v_content::jsonb;
    IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) <> 16
       OR v->>0 IS DISTINCT FROM 'v1' OR v->>9 IS DISTINCT FROM p_object_id THEN
        RAISE EXCEPTION 'audit.content_malformed'
            USING DETAIL = json_build_object('length', length(v_content))::text;
    END IF;
    INSERT INTO audit_auditlog (at, kind, channel, actor, actor_user_id, role, action,
                                object_type, object_id, request_id, outcome, status_code,
                                error_code, source_ip, details, content_hash)
    VALUES ((v->>1)::timestamptz, v->>2, v->>3, v->>4, (v->>5)::bigint, v->>6, v->>7,
            v->>8, p_object_id, v->>10, v->>11, (v->>12)::smallint, v->>13, v->>14, v->15,
            encode(sha256(convert_to(v_content, 'UTF8')), 'hex'));
END;
$$;
"""

REVERSE = "DROP FUNCTION audit_decision_insert(text, text, text);\n" + _previous.FORWARD


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_kind_and_outcome_domains")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
