"""Vacuum the event table after every few thousand published rows, not after 20 % of it.

The outbox is a queue: each event is inserted once and updated once (published), then
purged. Until a vacuum removes the old row versions, their entries stay in the pending-by-lane
index and every claim steps over them. The default trigger (20 % of the table dead) lets that
grow with the retention period; a fixed threshold keeps the pending index about as small as
the backlog.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("outbox", "0003_sixteen_lanes")]

    operations = [
        migrations.RunSQL(
            sql="""
            ALTER TABLE outbox_outboxevent SET (
                autovacuum_vacuum_scale_factor = 0.0,
                autovacuum_vacuum_threshold = 10000,
                autovacuum_vacuum_insert_scale_factor = 0.0,
                autovacuum_vacuum_insert_threshold = 50000
            );
            """,
            reverse_sql="""
            ALTER TABLE outbox_outboxevent RESET (
                autovacuum_vacuum_scale_factor,
                autovacuum_vacuum_threshold,
                autovacuum_vacuum_insert_scale_factor,
                autovacuum_vacuum_insert_threshold
            );
            """,
        )
    ]
