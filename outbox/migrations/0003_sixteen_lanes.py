"""The lane rows drainers lock (``LANE_COUNT`` = 16, matching ``outbox_lane_of``)."""

from django.db import migrations

FORWARD = r"""
INSERT INTO outbox_outboxlane (id, failures, next_attempt_at, drained_at, last_error)
SELECT g, 0, '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z', ''
  FROM generate_series(0, 15) AS g;
"""

REVERSE = "DELETE FROM outbox_outboxlane;"


class Migration(migrations.Migration):
    dependencies = [("outbox", "0002_enqueue_function")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
