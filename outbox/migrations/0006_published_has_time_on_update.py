""""A published row has its publish time" checked when a row is updated, not on every insert.

PostgreSQL 15 rebuilds a table's CHECK expressions from their stored text on every INSERT
execution: this one (two columns, so no domain can hold it) cost each posting about 20 us of
backend CPU for a rule no insert can break, since new rows come only from ``outbox_enqueue``,
which writes them pending. Rows become published by an UPDATE (the drainer's mark, an admin's
re-drive), so a row trigger on UPDATE keeps the same rule where it can be broken; its WHEN
clause is prepared once per UPDATE statement (a drain batch), and the function runs only for a
row that breaks the rule. The error is a check violation (SQLSTATE 23514), as before.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION outbox_refuse_published_without_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'outbox.published_without_time'
        USING ERRCODE = 'check_violation',
              DETAIL = json_build_object('event_id', NEW.event_id)::text;
END;
$$;

CREATE TRIGGER outbox_event_published_has_time
    BEFORE UPDATE ON outbox_outboxevent
    FOR EACH ROW
    WHEN (NEW.status = 'published' AND NEW.published_at IS NULL)
    EXECUTE FUNCTION outbox_refuse_published_without_time();
"""

REVERSE = r"""
DROP TRIGGER outbox_event_published_has_time ON outbox_outboxevent;
DROP FUNCTION outbox_refuse_published_without_time();
"""


class Migration(migrations.Migration):
    dependencies = [("outbox", "0005_status_and_sequence_domains")]

    operations = [
        migrations.RemoveConstraint(
            model_name="outboxevent", name="outbox_event_published_has_time"
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
