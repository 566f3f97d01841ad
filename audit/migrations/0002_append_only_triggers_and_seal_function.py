"""The audit log's own defences, and the one writer of its chain.

* ``audit_log_append_only``: refuses DELETE, and any UPDATE except sealing, which sets the
  three chain columns of a row that has none and changes nothing else.
* ``audit_log_no_truncate``: refuses TRUNCATE to every role but a superuser (test suites
  flush their tables between tests; a superuser can switch any trigger off anyway).
* ``audit_seal(max_rows)``: links unsealed rows into the chain in id order, under the lock of
  the chain head row, so two sealers never interleave. SECURITY DEFINER: the application role
  may run it but has no UPDATE privilege on the table itself. The hash it computes is
  ``sha256("<seq>|<id>|<content_hash>|<prev_hash>")`` in lower-case hex, which
  ``audit.services`` recomputes when it verifies the chain.
"""

from django.db import migrations

GENESIS_HASH = "0" * 64

FORWARD = rf"""
CREATE FUNCTION audit_log_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.row_hash IS NULL
       AND NEW.row_hash IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.chain_seq IS NOT NULL
       AND (to_jsonb(NEW) - ARRAY['chain_seq', 'prev_hash', 'row_hash'])
         = (to_jsonb(OLD) - ARRAY['chain_seq', 'prev_hash', 'row_hash']) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit.append_only'
        USING ERRCODE = '42501',
              DETAIL = format('audit log row %s cannot be %s', OLD.id,
                              CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'changed' END);
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_auditlog
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();

CREATE FUNCTION audit_log_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND rolsuper) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit.append_only'
        USING ERRCODE = '42501', DETAIL = 'the audit log cannot be truncated';
END;
$$;

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_truncate();

CREATE FUNCTION audit_seal(max_rows integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head_seq bigint;
    head_hash text;
    previous text;
    pending record;
    sealed integer := 0;
BEGIN
    -- The first seal (or the first after a test flush) starts the chain at the genesis hash.
    INSERT INTO audit_auditchainhead (id, last_seq, last_hash)
    VALUES (1, 0, '{GENESIS_HASH}')
    ON CONFLICT (id) DO NOTHING;
    -- The head row is the sealers' lock: a second sealer waits here, then (READ COMMITTED,
    -- a new snapshot per statement) sees what the first one sealed.
    SELECT last_seq, last_hash INTO head_seq, head_hash
      FROM audit_auditchainhead WHERE id = 1 FOR UPDATE;
    FOR pending IN
        SELECT id, content_hash FROM audit_auditlog
         WHERE row_hash IS NULL
         ORDER BY id
         LIMIT max_rows
    LOOP
        previous := head_hash;
        head_seq := head_seq + 1;
        head_hash := encode(sha256(convert_to(
            head_seq::text || '|' || pending.id::text || '|' || pending.content_hash || '|' || previous,
            'UTF8')), 'hex');
        UPDATE audit_auditlog
           SET chain_seq = head_seq, prev_hash = previous, row_hash = head_hash
         WHERE id = pending.id;
        sealed := sealed + 1;
    END LOOP;
    IF sealed > 0 THEN
        UPDATE audit_auditchainhead
           SET last_seq = head_seq, last_hash = head_hash, sealed_at = now()
         WHERE id = 1;
    END IF;
    RETURN sealed;
END;
$$;

REVOKE ALL ON FUNCTION audit_seal(integer) FROM PUBLIC;
"""

REVERSE = r"""
DROP FUNCTION IF EXISTS audit_seal(integer);
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_log_refuse_truncate();
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_log_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_log_and_chain_head")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
