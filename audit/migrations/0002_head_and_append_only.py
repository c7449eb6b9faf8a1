"""Create the chain head row, and on PostgreSQL refuse UPDATE and DELETE on entries."""

from __future__ import annotations

from django.db import migrations

from audit.chain import GENESIS_HASH

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION consentry_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consentry: % on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_entry_append_only
    BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION consentry_refuse_change();
"""

REVERSE_SQL = "DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry;"


def create_head(apps, schema_editor):
    apps.get_model("audit", "AuditHead").objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})


def install_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def remove_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
