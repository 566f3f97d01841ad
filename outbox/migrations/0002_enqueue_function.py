"""``outbox_enqueue``: the one statement that writes an event, callable from SQL and Python.

The posting function (``ledger_post``) calls it inside its own statement, so a transfer's
event costs no extra round trip; Python services call it through ``outbox.services``.

* The lane is a hash of the aggregate onto ``LANE_COUNT`` (16) lanes, so all events of one
  aggregate share a lane and are published in order. ``hashtext`` is stable within a
  PostgreSQL major version; drain the outbox before a major upgrade.
* The sequence is either given (a transaction's events have fixed positions) or the next
  value of the aggregate's counter row: the upsert locks that row until commit, so two
  transactions announcing changes of one aggregate get consecutive numbers in commit order.
* ``enqueued_at`` is the database clock when the row is written, which is just before the
  commit of the change: the start of the commit-to-publish lag.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION outbox_lane_of(p_aggregate_type text, p_aggregate_id text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((hashtext(p_aggregate_type || '/' || p_aggregate_id) & 2147483647) % 16)::smallint
$$;

CREATE FUNCTION outbox_enqueue(
    p_type text,
    p_source text,
    p_aggregate_type text,
    p_aggregate_id text,
    p_sequence bigint,          -- NULL: the next number of the aggregate's counter
    p_time timestamptz,         -- NULL: the transaction's start (the service had no now)
    p_business_date date,
    p_data jsonb
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_sequence bigint := p_sequence;
    v_id bigint;
BEGIN
    IF v_sequence IS NULL THEN
        INSERT INTO outbox_outboxaggregate AS a (aggregate_type, aggregate_id, last_sequence)
        VALUES (p_aggregate_type, p_aggregate_id, 1)
        ON CONFLICT (aggregate_type, aggregate_id)
        DO UPDATE SET last_sequence = a.last_sequence + 1
        RETURNING a.last_sequence INTO v_sequence;
    END IF;
    INSERT INTO outbox_outboxevent (event_id, type, source, aggregate_type, aggregate_id,
                                    sequence, time, business_date, data, lane, status,
                                    attempts, last_error, enqueued_at)
    VALUES (gen_random_uuid(), p_type, p_source, p_aggregate_type, p_aggregate_id,
            v_sequence, coalesce(p_time, now()), p_business_date, coalesce(p_data, '{}'::jsonb),
            outbox_lane_of(p_aggregate_type, p_aggregate_id), 'pending', 0, '',
            clock_timestamp())
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;
"""

REVERSE = r"""
DROP FUNCTION outbox_enqueue(text, text, text, text, bigint, timestamptz, date, jsonb);
DROP FUNCTION outbox_lane_of(text, text);
"""


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_event_aggregate_and_lane_tables")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
