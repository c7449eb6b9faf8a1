"""On PostgreSQL, consent events can be inserted but never updated or deleted."""

from __future__ import annotations

from django.db import migrations

SQL = """
CREATE TRIGGER consent_event_append_only
    BEFORE UPDATE OR DELETE ON consent_consentevent
    FOR EACH ROW EXECUTE FUNCTION consentry_refuse_change();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS consent_event_append_only ON consent_consentevent;")


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial"), ("audit", "0002_head_and_append_only")]

    operations = [migrations.RunPython(install, remove)]
