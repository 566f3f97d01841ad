"""``limits_consume`` plans its statements once per session, not on every call.

Under ``plan_cache_mode = auto`` the usage upsert was re-planned on every debit (its generic
plan's estimate looks dearer than a custom one); one call through pgbench, one client, went
from 0.55 ms to 0.24 ms with the generic plan, which is the same index lookups on the given
ids. See ledger migration 0008 for ``ledger_post``, which sets it in its definition.
"""

from django.db import migrations

SIGNATURE = "(bigint, text, bigint, text, text, date, boolean)"


class Migration(migrations.Migration):
    dependencies = [("limits", "0002_limits_consume_function")]

    operations = [
        migrations.RunSQL(
            f"ALTER FUNCTION limits_consume{SIGNATURE} SET plan_cache_mode = force_generic_plan",
            f"ALTER FUNCTION limits_consume{SIGNATURE} RESET plan_cache_mode",
        )
    ]
