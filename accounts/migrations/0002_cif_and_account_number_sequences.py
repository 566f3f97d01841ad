from django.db import migrations


class Migration(migrations.Migration):
    """Sequences behind CIF ids and account numbers: gap-tolerant, race-free, never reused."""

    dependencies = [("accounts", "0001_cif_branches_products_accounts")]

    operations = [
        migrations.RunSQL(
            sql=[
                "CREATE SEQUENCE accounts_cif_seq START 1000001",
                "CREATE SEQUENCE accounts_account_serial_seq START 1000001",
            ],
            reverse_sql=[
                "DROP SEQUENCE accounts_cif_seq",
                "DROP SEQUENCE accounts_account_serial_seq",
            ],
        ),
    ]
