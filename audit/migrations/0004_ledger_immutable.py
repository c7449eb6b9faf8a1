"""On PostgreSQL, make the ledger tables refuse every change but INSERT.

Entries, checkpoints and stored tree nodes refuse UPDATE and DELETE row by
row (0002 did this for entries) and TRUNCATE statement by statement; the
chain head only moves forward, to an entry that is stored, and is never
removed.
A privileged owner can still drop the triggers: that is what the signed
checkpoints and offline verification are for, and why production runs the
app with a role that has INSERT and SELECT only (README, "Audit ledger").

The one exception is a ledger reset by a superuser in a database that has
``consentry.allow_ledger_reset`` switched on: the test harness sets it on
its throwaway test database so pytest-django can TRUNCATE between
transactional tests. Any role can set a custom setting, hence the superuser
check: a superuser could disable the triggers anyway.
"""

from __future__ import annotations

from django.db import migrations

INSTALL_SQL = """
CREATE OR REPLACE FUNCTION consentry_ledger_reset_allowed() RETURNS boolean AS $$
    SELECT coalesce(current_setting('consentry.allow_ledger_reset', true), '') = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION consentry_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF consentry_ledger_reset_allowed() THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'consentry: TRUNCATE on % is refused: the ledger is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION consentry_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq > OLD.seq
       AND EXISTS (SELECT 1 FROM audit_auditentry WHERE seq = NEW.seq AND hash = NEW.hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consentry: % on the audit chain head is refused: it only moves forward, to a stored entry', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_checkpoint_append_only
    BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION consentry_refuse_change();
CREATE TRIGGER audit_tree_node_append_only
    BEFORE UPDATE OR DELETE ON audit_audittreenode
    FOR EACH ROW EXECUTE FUNCTION consentry_refuse_change();
CREATE TRIGGER audit_head_forward_only
    BEFORE UPDATE OR DELETE ON audit_audithead
    FOR EACH ROW EXECUTE FUNCTION consentry_head_forward_only();
CREATE TRIGGER audit_auditentry_no_truncate
    BEFORE TRUNCATE ON audit_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_refuse_truncate();
CREATE TRIGGER audit_auditcheckpoint_no_truncate
    BEFORE TRUNCATE ON audit_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_refuse_truncate();
CREATE TRIGGER audit_audittreenode_no_truncate
    BEFORE TRUNCATE ON audit_audittreenode
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_refuse_truncate();
CREATE TRIGGER audit_audithead_no_truncate
    BEFORE TRUNCATE ON audit_audithead
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_refuse_truncate();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_tree_node_append_only ON audit_audittreenode;
DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_audithead;
DROP TRIGGER IF EXISTS audit_auditentry_no_truncate ON audit_auditentry;
DROP TRIGGER IF EXISTS audit_auditcheckpoint_no_truncate ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_audittreenode_no_truncate ON audit_audittreenode;
DROP TRIGGER IF EXISTS audit_audithead_no_truncate ON audit_audithead;
DROP FUNCTION IF EXISTS consentry_head_forward_only();
DROP FUNCTION IF EXISTS consentry_refuse_truncate();
DROP FUNCTION IF EXISTS consentry_ledger_reset_allowed();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL_SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_checkpoints_exports")]

    operations = [migrations.RunPython(install, remove)]
