"""On PostgreSQL, append a batch of entries in one round trip (``audit.services.record_many``).

The same work as ``consentry_audit_append`` (0005), once for the batch: take
the head's row lock, chain and hash each entry from its three pieces of
canonical text exactly as ``audit/chain.py`` does, insert them all with one
statement, move the head once. A service that records several entries for
one change thus pays one round trip under the lock instead of one per entry,
and takes the lock once. ``record_many`` rehashes every entry in Python and
refuses the batch if any hash differs.
"""

from __future__ import annotations

from django.db import migrations

INSTALL_SQL = r"""
CREATE OR REPLACE FUNCTION consentry_audit_append_many(
    p_at timestamptz[],
    p_event_type text[],
    p_actor text[],
    p_subject text[],
    p_object_type text[],
    p_object_id text[],
    p_region text[],
    p_payload jsonb[],
    p_text_before_prev text[],
    p_text_before_seq text[],
    p_text_after_seq text[],
    OUT o_first_seq bigint,
    OUT o_prev_hash text,
    OUT o_hashes text[]
) AS $$
DECLARE
    v_seq bigint;
    v_hash text;
    v_prev text[] := '{}';
BEGIN
    SELECT seq, hash INTO v_seq, v_hash FROM audit_audithead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- A table reset removed the head: start again from the genesis hash.
        INSERT INTO audit_audithead (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT seq, hash INTO v_seq, v_hash FROM audit_audithead WHERE id = 1 FOR UPDATE;
    END IF;
    o_first_seq := v_seq + 1;
    o_prev_hash := v_hash;
    o_hashes := '{}';
    FOR i IN 1 .. coalesce(array_length(p_at, 1), 0) LOOP
        v_seq := v_seq + 1;
        v_prev := v_prev || v_hash;
        v_hash := encode(sha256(
            '\x636f6e73656e7472792e61756469742e656e7472792e763100'::bytea
            || convert_to(p_text_before_prev[i] || v_hash || p_text_before_seq[i] || v_seq::text || p_text_after_seq[i], 'UTF8')
        ), 'hex');
        o_hashes := o_hashes || v_hash;
    END LOOP;
    IF v_seq < o_first_seq THEN
        RETURN;
    END IF;
    INSERT INTO audit_auditentry
        (seq, at, event_type, actor, subject, object_type, object_id, region, payload, prev_hash, hash)
    SELECT o_first_seq + n - 1, e_at, e_type, e_actor, e_subject, e_object_type, e_object_id, e_region, e_payload,
           e_prev, e_hash
    FROM unnest(p_at, p_event_type, p_actor, p_subject, p_object_type, p_object_id, p_region, p_payload, v_prev, o_hashes)
         WITH ORDINALITY AS t(e_at, e_type, e_actor, e_subject, e_object_type, e_object_id, e_region, e_payload, e_prev,
                              e_hash, n);
    UPDATE audit_audithead SET seq = v_seq, hash = v_hash WHERE id = 1;
END;
$$ LANGUAGE plpgsql;
"""

REVERSE_SQL = (
    "DROP FUNCTION IF EXISTS consentry_audit_append_many("
    "timestamptz[], text[], text[], text[], text[], text[], text[], jsonb[], text[], text[], text[]);"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL_SQL, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_append_function")]

    operations = [migrations.RunPython(install, remove)]
