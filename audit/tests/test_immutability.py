"""Nobody rewrites the ledger: the ORM refuses it everywhere, PostgreSQL refuses it in the database."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditQueuedEntry, AuditTreeNode
from audit.services import checkpoint_create, record, record_queued
from audit.tests.conftest import ACTOR, TYPES, seed_chain, write_entries

pytestmark = pytest.mark.django_db


def test_the_orm_refuses_to_change_or_delete_a_stored_entry():
    [entry] = write_entries(1)
    entry.actor = "user:mallory"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(seq=1).update(actor="user:mallory")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()


def test_the_orm_refuses_to_change_or_delete_a_checkpoint():
    write_entries(2)
    checkpoint = checkpoint_create()
    assert checkpoint is not None
    with pytest.raises(PermissionError):
        checkpoint.save()
    with pytest.raises(PermissionError):
        AuditCheckpoint.objects.all().delete()


def _refused(sql: str, params: tuple = ()) -> None:
    with (
        pytest.raises(DatabaseError, match=r"refused|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = 2",
        "DELETE FROM audit_auditentry WHERE seq = 2",
        "UPDATE audit_auditcheckpoint SET root = repeat('0', 64)",
        "DELETE FROM audit_auditcheckpoint",
        "UPDATE audit_audittreenode SET hash = repeat('0', 64)",
        "DELETE FROM audit_audittreenode",
        "DELETE FROM audit_audithead",
        "UPDATE audit_audithead SET seq = seq - 1",
        "UPDATE audit_audithead SET seq = seq + 1, hash = repeat('0', 64)",
    ],
)
def test_postgres_triggers_refuse_rewriting_the_ledger(sql):
    seed_chain(300)
    checkpoint_create()
    _refused(sql)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "table", ["audit_auditentry", "audit_auditcheckpoint", "audit_audittreenode", "audit_audithead"]
)
def test_postgres_refuses_truncate_outside_the_test_harness_reset(table):
    write_entries(2)
    checkpoint_create()
    with pytest.raises(DatabaseError, match="refused"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL consentry.allow_ledger_reset = 'off'")
        cursor.execute(f"TRUNCATE {table} CASCADE")


@pytest.mark.postgres
def test_the_ledger_reset_switch_does_not_help_a_role_that_is_not_superuser():
    role = f"consentry_test_{uuid.uuid4().hex[:8]}"
    write_entries(2)
    with pytest.raises(DatabaseError, match="refused"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT TRUNCATE ON audit_auditentry TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute("SET LOCAL consentry.allow_ledger_reset = 'on'")
        cursor.execute("TRUNCATE audit_auditentry")


def _readme_grants(role: str) -> list[str]:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    block = re.search(r"```sql\n-- consentry: ledger grants.*?\n(.*?)```", readme, re.S)
    assert block, "README.md lost its ledger grants block"
    sql = re.sub(r"--[^\n]*", "", block.group(1)).replace("consentry_app", role)
    sql = sql.replace("LOGIN PASSWORD 'change-me'", "NOLOGIN")
    sql = sql.replace("DATABASE consentry ", f"DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} ")
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


@pytest.mark.postgres
def test_the_readme_role_appends_and_reads_but_cannot_rewrite():
    role = f"consentry_app_{uuid.uuid4().hex[:8]}"
    seed_chain(5)
    with connection.cursor() as cursor:
        for statement in _readme_grants(role):
            cursor.execute(statement)
        cursor.execute(f"SET LOCAL ROLE {role}")
    entry = record(event_type=TYPES[0], actor=ACTOR, payload={"as": "app role"})
    record_queued(event_type=TYPES[1], actor=ACTOR, payload={"as": "app role, queued"})
    checkpoint = checkpoint_create()
    assert checkpoint is not None
    assert (entry.seq, checkpoint.size) == (6, 7)
    assert AuditHead.objects.get().seq == 7
    assert not AuditQueuedEntry.objects.exists()
    record_queued(event_type=TYPES[1], actor=ACTOR)
    assert AuditTreeNode.objects.count() == 0
    for sql in (
        "UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = 2",
        "DELETE FROM audit_auditentry WHERE seq = 2",
        "TRUNCATE audit_auditentry",
        "UPDATE audit_auditcheckpoint SET root = repeat('0', 64)",
        "DELETE FROM audit_audithead",
        "UPDATE audit_auditqueuedentry SET actor = 'user:mallory'",
        "TRUNCATE audit_auditqueuedentry",
    ):
        _refused(sql)
