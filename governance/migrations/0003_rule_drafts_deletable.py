"""On PostgreSQL, let drafts be deleted: the immutability trigger returned NEW (NULL) for them.

A BEFORE DELETE trigger that returns NULL skips the delete without an error,
so discarding a draft rule answered success and left the draft in place. The
function is otherwise unchanged from 0002.
"""

from __future__ import annotations

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION consentry_rule_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.state = 'draft' THEN
        -- NEW is NULL for a DELETE; returning it would silently skip the delete.
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
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
"""

REVERSE_SQL = """
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
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_rule_invariants")]

    operations = [migrations.RunPython(install, remove)]
