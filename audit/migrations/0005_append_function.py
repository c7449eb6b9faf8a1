"""On PostgreSQL, append an entry in one round trip: lock the head, hash, insert, move the head.

Every writer waits for the chain head's row lock, so the round trips made
while holding it bound the ledger's throughput. ``record()`` sends the
entry's canonical JSON in three pieces around the two values only the head
knows (``prev_hash`` and ``seq``); this function takes the lock, fills them
in, hashes exactly as ``audit/chain.py`` does (SHA-256 over the tag
``consentry.audit.entry.v1\\0`` and the UTF-8 text), inserts the entry and
moves the head, all in one call. ``record()`` recomputes the hash itself and
refuses the append if the two ever differ. It runs with the caller's
privileges: INSERT on entries and UPDATE on the head, as the README's
application role has.
"""

from __future__ import annotations

from django.db import migrations

INSTALL_SQL = r"""
CREATE OR REPLACE FUNCTION consentry_audit_append(
    p_at timestamptz,
    p_event_type text,
    p_actor text,
    p_subject text,
    p_object_type text,
    p_object_id text,
    p_region text,
    p_payload jsonb,
    p_text_before_prev text,
    p_text_before_seq text,
    p_text_after_seq text,
    OUT o_seq bigint,
    OUT o_prev_hash text,
    OUT o_hash text
) AS $$
BEGIN
    SELECT seq, hash INTO o_seq, o_prev_hash FROM audit_audithead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- A table reset removed the head: start again from the genesis hash.
        INSERT INTO audit_audithead (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT seq, hash INTO o_seq, o_prev_hash FROM audit_audithead WHERE id = 1 FOR UPDATE;
    END IF;
    o_seq := o_seq + 1;
    o_hash := encode(sha256(
        '\x636f6e73656e7472792e61756469742e656e7472792e763100'::bytea
        || convert_to(p_text_before_prev || o_prev_hash || p_text_before_seq || o_seq::text || p_text_after_seq, 'UTF8')
    ), 'hex');
    INSERT INTO audit_auditentry
        (seq, at, event_type, actor, subject, object_type, object_id, region, payload, prev_hash, hash)
    VALUES
        (o_seq, p_at, p_event_type, p_actor, p_subject, p_object_type, p_object_id, p_region, p_payload,
         o_prev_hash, o_hash);
    UPDATE audit_audithead SET seq = o_seq, hash = o_hash WHERE id = 1;
END;
$$ LANGUAGE plpgsql;
"""

REVERSE_SQL = "DROP FUNCTION IF EXISTS consentry_audit_append(timestamptz, text, text, text, text, text, text, jsonb, text, text, text);"


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL_SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_ledger_immutable")]

    operations = [migrations.RunPython(install, remove)]
