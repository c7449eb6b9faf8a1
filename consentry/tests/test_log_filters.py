"""The console says what an operator needs, once: no sealer chatter, no traceback for a refused page."""

from __future__ import annotations

import logging
import sys

import pytest
from celery.app.trace import LOG_RECEIVED
from celery.beat import ScheduleEntry, Scheduler
from celery.worker import request, strategy
from kombu import Connection

from audit.actors import Actor
from audit.models import EventType
from audit.services import record, record_queued
from audit.tasks import checkpoint_tick, queue_seal
from conftest import make_user
from consentry.celery import app
from consentry.log_filters import ClientErrorsWithoutTraceback
from consentry.tasks import relay_outbox
from governance.tasks import policy_boundaries_announce_task

pytestmark = pytest.mark.django_db


def info_lines(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.INFO]


def test_the_sealer_with_nothing_to_do_logs_nothing_at_info(caplog):
    caplog.set_level(logging.INFO)
    # Celery takes seconds for a schedule, as beat_schedule does; its stubs want a schedule object.
    entry = ScheduleEntry(name="audit-seal", task="audit.queue_seal", schedule=1.0, app=app)  # type: ignore[arg-type]
    # Beat sends the task (over an in-memory broker here, not the state folder's queue) ...
    with Connection("memory://") as connection, connection.Producer() as producer:
        Scheduler(app, lazy=True).apply_entry(entry, producer=producer)
    # ... the worker receives it, the way its strategy announces each message ...
    context = {"id": "1", "name": "audit.queue_seal", "args": "()", "kwargs": "{}", "eta": None}
    strategy.logger.info(LOG_RECEIVED, context, extra={"data": context})
    # ... and runs it through Celery's tracer, which logs its success; a run that expired unclaimed is discarded.
    result = queue_seal.apply()
    # The module's logger, which its stubs leave out.
    request.logger.info("Discarding revoked task: %s[%s]", "audit.queue_seal", "3")  # type: ignore[attr-defined]

    assert result.get() == 0
    assert info_lines(caplog) == []


def test_the_sealer_says_when_it_sealed_entries_and_other_tasks_still_log(caplog):
    record_queued(
        event_type=EventType.GRANT_ISSUED, actor=Actor.system("tests"), object_type="capture_grant", object_id="g1"
    )
    caplog.set_level(logging.INFO)

    queue_seal.apply()
    context = {"id": "2", "name": "audit.export_sweep", "args": "()", "kwargs": "{}", "eta": None}
    strategy.logger.info(LOG_RECEIVED, context, extra={"data": context})

    assert info_lines(caplog) == [
        "audit.tasks: sealed 1 queued audit entries into the chain",
        "celery.worker.strategy: Task audit.export_sweep[2] received",
    ]


@pytest.mark.parametrize(
    ("task", "schedule"),
    [(relay_outbox, 5.0), (policy_boundaries_announce_task, 15.0), (checkpoint_tick, 30.0)],
    ids=["outbox relay", "policy boundaries", "checkpoint tick"],
)
def test_frequent_periodic_tasks_with_nothing_to_do_log_nothing_at_info(caplog, task, schedule):
    caplog.set_level(logging.INFO)
    entry = ScheduleEntry(name=task.name, task=task.name, schedule=schedule, app=app)
    with Connection("memory://") as connection, connection.Producer() as producer:
        Scheduler(app, lazy=True).apply_entry(entry, producer=producer)
    context = {"id": "4", "name": task.name, "args": "()", "kwargs": "{}", "eta": None}
    strategy.logger.info(LOG_RECEIVED, context, extra={"data": context})

    result = task.apply()

    assert not result.get()
    assert info_lines(caplog) == []


def test_a_signed_checkpoint_is_logged(caplog, settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 1
    record(event_type=EventType.GRANT_ISSUED, actor=Actor.system("tests"), object_type="capture_grant", object_id="g2")
    caplog.set_level(logging.INFO)

    number = checkpoint_tick.apply().get()

    assert number == 1
    assert info_lines(caplog) == ["audit.tasks: signed audit checkpoint 1 over 1 entries"]


def test_a_refused_page_logs_one_line_without_a_traceback(client, caplog):
    caplog.set_level(logging.INFO)
    client.force_login(make_user())

    response = client.get("/legal/")

    assert response.status_code == 403
    lines = [r for r in caplog.records if r.name.startswith("django")]
    assert [(r.name, r.levelname, r.getMessage()) for r in lines] == [
        ("django.request", "WARNING", "Forbidden (Permission denied): /legal/")
    ]
    assert lines[0].exc_info is None
    assert "Traceback" not in logging.Formatter().format(lines[0])


def test_django_messages_reach_the_console_once():
    # Django's default logging gives its logger a console handler of its own (shown in debug);
    # with the root's console handler as well, every request warning was printed twice.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django.request").propagate
    assert [type(h).__name__ for h in logging.getLogger().handlers if type(h).__name__ == "StreamHandler"] == [
        "StreamHandler"
    ]


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    entry = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), exc_info)
    entry.status_code = 500

    assert ClientErrorsWithoutTraceback().filter(entry)
    assert entry.exc_info is exc_info
