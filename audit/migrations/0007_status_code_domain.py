"""``status_code`` checked by a domain type instead of the table CHECK Django made for it.

The last table CHECK on the audit log (``PositiveSmallIntegerField``'s ``>= 0``), moved for
the reason migration 0005 gives: PostgreSQL 15 builds and plans a table's CHECK expressions
on every INSERT execution, a domain's check once per session. Same rule.
"""

from django.db import migrations, models

FORWARD = r"""
CREATE DOMAIN audit_status_code AS smallint CHECK (VALUE >= 0);
ALTER TABLE audit_auditlog ALTER COLUMN status_code TYPE audit_status_code;
"""

REVERSE = r"""
ALTER TABLE audit_auditlog ALTER COLUMN status_code TYPE smallint;
DROP DOMAIN audit_status_code;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_decision_insert_from_content")]

    operations = [
        migrations.AlterField(
            model_name="auditlog",
            name="status_code",
            field=models.SmallIntegerField(blank=True, null=True),
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
