"""Drop ``audit_decision_insert``: ``ledger_post`` writes its decision row through
``audit_row_insert`` (0008) since ledger 0011, and nothing else called it."""

import importlib

from django.db import migrations

_content = importlib.import_module("audit.migrations.0006_decision_insert_from_content")
_DROP_0004 = "DROP FUNCTION audit_decision_insert(jsonb, text);\n"
assert _content.FORWARD.count(_DROP_0004) == 1
RECREATE = _content.FORWARD.replace(_DROP_0004, "", 1)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_audit_row_type_and_insert"),
        ("ledger", "0011_ledger_post_typed_rows"),
    ]

    operations = [
        migrations.RunSQL(
            sql="DROP FUNCTION audit_decision_insert(text, text, text);", reverse_sql=RECREATE
        )
    ]
