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
BEGIN
    -- PostgreSQL's to_json and Python's json.dumps escape only plain ASCII the same way.
    IF p_object_id !~ '^[A-Za-z0-9._:-]{1,64}$' THEN
        RAISE EXCEPTION 'audit.object_id_not_plain'
            USING DETAIL = json_build_object('object_id', left(p_object_id, 64))::text;
    END IF;
    -- One statement for the rest: a posting pays for each PL/pgSQL statement it runs.
    -- The content is ["v1", at, kind, channel, actor, actor_user_id, role, action,
    -- object_type, object_id, request_id, outcome, status_code, error_code, source_ip,
    -- details]; the row is written only if it is a whole v1 row with the id in its place.
    INSERT INTO audit_auditlog (at, kind, channel, actor, actor_user_id, role, action,
                                object_type, object_id, request_id, outcome, status_code,
                                error_code, source_ip, details, content_hash)
    SELECT (r.v->>1)::timestamptz, r.v->>2, r.v->>3, r.v->>4, (r.v->>5)::bigint, r.v->>6,
           r.v->>7, r.v->>8, p_object_id, r.v->>10, r.v->>11, (r.v->>12)::smallint,
           r.v->>13, r.v->>14, r.v->15, encode(sha256(convert_to(r.content, 'UTF8')), 'hex')
      -- OFFSET 0 keeps the subquery whole: inlined, each r.v would parse the text again.
      FROM (SELECT c.content, c.content::jsonb AS v
              FROM (SELECT p_prefix || to_json(p_object_id)::text || p_suffix AS content) c
            OFFSET 0) r
     WHERE jsonb_typeof(r.v) = 'array' AND jsonb_array_length(r.v) = 16
       AND r.v->>0 = 'v1' AND r.v->>9 = p_object_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit.content_malformed' USING DETAIL = json_build_object(
            'length', length(p_prefix) + length(p_suffix))::text;
    END IF;
END;
$$;
"""

REVERSE = "DROP FUNCTION audit_decision_insert(text, text, text);\n" + _previous.FORWARD


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_kind_and_outcome_domains")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
