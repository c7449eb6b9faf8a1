"""Entries queued for the sealer (``audit.services.record_queued``); on PostgreSQL, their guards and the sealer.

A queued entry is inserted with the change it records and removed only by the
sealer, in the transaction that chains it: rows are never changed, and the
table is never truncated (except in a ledger reset, as in 0004). The README's
application role has INSERT, SELECT and DELETE on it.

``consentry_audit_seal`` chains up to ``p_limit`` queued entries, in queue
order, in one call: it takes the chain head's lock, hashes each entry from
its stored canonical text exactly as ``consentry_audit_append`` (0005) does,
inserts it, moves the head and deletes the queue rows. ``queue_seal`` then
rehashes the sealed entries from their stored content and refuses the batch
if any differs.
"""

from __future__ import annotations

from django.db import migrations, models

INSTALL_SQL = r"""
CREATE OR REPLACE FUNCTION consentry_audit_seal(
    p_limit integer,
    OUT o_count integer,
    OUT o_first_seq bigint,
    OUT o_prev_hash text
) AS $$
DECLARE
    v_ids bigint[];
    v_seq bigint;
    v_hash text;
    v_prev text;
    r record;
BEGIN
    SELECT seq, hash INTO v_seq, v_hash FROM audit_audithead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- A table reset removed the head: start again from the genesis hash.
        INSERT INTO audit_audithead (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT seq, hash INTO v_seq, v_hash FROM audit_audithead WHERE id = 1 FOR UPDATE;
    END IF;
    o_count := 0;
    o_first_seq := v_seq + 1;
    o_prev_hash := v_hash;
    -- Sealers wait for each other on the head's lock, so these rows are this sealer's alone.
    SELECT array_agg(id ORDER BY id) INTO v_ids
    FROM (SELECT id FROM audit_auditqueuedentry ORDER BY id LIMIT p_limit) AS oldest;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    FOR r IN SELECT * FROM audit_auditqueuedentry WHERE id = ANY (v_ids) ORDER BY id LOOP
        v_seq := v_seq + 1;
        v_prev := v_hash;
        v_hash := encode(sha256(
            '\x636f6e73656e7472792e61756469742e656e7472792e763100'::bytea
            || convert_to(r.text_before_prev || v_prev || r.text_before_seq || v_seq::text || r.text_after_seq, 'UTF8')
        ), 'hex');
        INSERT INTO audit_auditentry
            (seq, at, event_type, actor, subject, object_type, object_id, region, payload, prev_hash, hash)
        VALUES
            (v_seq, r.at, r.event_type, r.actor, r.subject, r.object_type, r.object_id, r.region, r.payload,
             v_prev, v_hash);
        o_count := o_count + 1;
    END LOOP;
    DELETE FROM audit_auditqueuedentry WHERE id = ANY (v_ids);
    UPDATE audit_audithead SET seq = v_seq, hash = v_hash WHERE id = 1;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_queued_entry_no_update
    BEFORE UPDATE ON audit_auditqueuedentry
    FOR EACH ROW EXECUTE FUNCTION consentry_refuse_change();
CREATE TRIGGER audit_auditqueuedentry_no_truncate
    BEFORE TRUNCATE ON audit_auditqueuedentry
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_refuse_truncate();
"""

REVERSE_SQL = """
DROP FUNCTION IF EXISTS consentry_audit_seal(integer);
DROP TRIGGER IF EXISTS audit_queued_entry_no_update ON audit_auditqueuedentry;
DROP TRIGGER IF EXISTS audit_auditqueuedentry_no_truncate ON audit_auditqueuedentry;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL_SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_entry_hash_one_index")]

    operations = [
        migrations.CreateModel(
            name="AuditQueuedEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("event_type", models.CharField(max_length=64)),
                ("actor", models.CharField(max_length=200)),
                ("subject", models.CharField(blank=True, default="", max_length=200)),
                ("object_type", models.CharField(blank=True, default="", max_length=64)),
                ("object_id", models.CharField(blank=True, default="", max_length=200)),
                ("region", models.CharField(blank=True, default="", max_length=16)),
                ("payload", models.JSONField(default=dict)),
                ("text_before_prev", models.TextField(blank=True, default="")),
                ("text_before_seq", models.TextField(blank=True, default="")),
                ("text_after_seq", models.TextField(blank=True, default="")),
            ],
            options={"ordering": ("id",), "verbose_name_plural": "queued audit entries"},
        ),
        migrations.RunPython(install, remove),
    ]
