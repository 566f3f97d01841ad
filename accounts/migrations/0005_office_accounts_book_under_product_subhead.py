from django.db import migrations


def forwards(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    account = apps.get_model("accounts", "Account")
    for row in account.objects.filter(kind="office", gl_subhead__isnull=True).select_related(
        "product"
    ):
        row.gl_subhead_id = row.product.gl_subhead_id
        row.save(update_fields=["gl_subhead"])


class Migration(migrations.Migration):
    """Existing office accounts keep booking where they did: under their product's sub-head."""

    dependencies = [("accounts", "0004_account_gl_subhead")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
