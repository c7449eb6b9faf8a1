"""Database invariants for jurisdiction rules, and the policy revision row.

On PostgreSQL:
- no two approved rules for one region overlap in time (GiST exclusion);
- an approved rule never changes, except the two transitions approval of a
  successor makes: ``state`` to superseded, or closing an open ``effective_to``.
"""

from __future__ import annotations

from django.db import migrations

SQL = """
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE governance_jurisdictionrule
    ADD CONSTRAINT rule_approved_no_overlap
    EXCLUDE USING gist (
        region_id WITH =,
        tstzrange(effective_from, COALESCE(effective_to, 'infinity'::timestamptz), '[)') WITH &&
    ) WHERE (state = 'approved');

CREATE OR REPLACE FUNCTION consentry_rule_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.state = 'draft' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'consentry: an approved rule cannot be deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.state = 'superseded' THEN
        RAISE EXCEPTION 'consentry: a superseded rule cannot change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.region_id, NEW.status, NEW.preconditions, NEW.blocked_categories, NEW.max_retention_days,
        NEW.effective_from, NEW.created_by_id, NEW.approved_by_id, NEW.approved_at, NEW.approved_via,
        NEW.notes, NEW.supersedes_id)
       IS DISTINCT FROM
       (OLD.region_id, OLD.status, OLD.preconditions, OLD.blocked_categories, OLD.max_retention_days,
        OLD.effective_from, OLD.created_by_id, OLD.approved_by_id, OLD.approved_at, OLD.approved_via,
        OLD.notes, OLD.supersedes_id) THEN
        RAISE EXCEPTION 'consentry: an approved rule is immutable; draft a new version'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.state NOT IN ('approved', 'superseded') THEN
        RAISE EXCEPTION 'consentry: an approved rule cannot return to draft' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.effective_to IS DISTINCT FROM OLD.effective_to
       AND NOT (OLD.effective_to IS NULL OR NEW.effective_to < OLD.effective_to) THEN
        RAISE EXCEPTION 'consentry: an approved rule can only be closed earlier' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER rule_immutable_when_approved
    BEFORE UPDATE OR DELETE ON governance_jurisdictionrule
    FOR EACH ROW EXECUTE FUNCTION consentry_rule_immutable();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS rule_immutable_when_approved ON governance_jurisdictionrule;
ALTER TABLE governance_jurisdictionrule DROP CONSTRAINT IF EXISTS rule_approved_no_overlap;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL)


def create_revision(apps, schema_editor):
    apps.get_model("governance", "PolicyRevision").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]

    operations = [
        migrations.RunPython(install, remove),
        migrations.RunPython(create_revision, migrations.RunPython.noop),
    ]
