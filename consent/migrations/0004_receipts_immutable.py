"""On PostgreSQL, a receipt can be inserted but never updated or deleted."""

from __future__ import annotations

from django.db import migrations

SQL = """
CREATE TRIGGER consent_receipt_immutable
    BEFORE UPDATE OR DELETE ON consent_receipt
    FOR EACH ROW EXECUTE FUNCTION consentry_refuse_change();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS consent_receipt_immutable ON consent_receipt;")


class Migration(migrations.Migration):
    dependencies = [("consent", "0003_receipts")]

    operations = [migrations.RunPython(install, remove)]
