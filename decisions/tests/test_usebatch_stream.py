"""result_blocks: the stream's answer, and the garbage collector left as it was found."""

from __future__ import annotations

import gc
from datetime import timedelta

import pytest

from decisions import engine, usebatch
from decisions.snapshot import current_policy
from decisions.tests.conftest import PURPOSE
from decisions.tests.test_usebatch_equivalence import AT, world  # noqa: F401 - the fixture


@pytest.fixture
def records(world):  # noqa: F811 - the imported fixture
    _, grants = world
    made: list[engine.UseRecord | usebatch.InvalidRecord] = []
    for index in range(7):
        grant = grants[index % len(grants)]
        made.append(
            engine.UseRecord(f"r{index}", grant.subject, "keystrokes", grant.issued_at + timedelta(seconds=5), grant.id)
        )
    made.append(usebatch.InvalidRecord("bad", "captured_at needs a time zone."))
    return made


@pytest.fixture
def collector():
    """Each test starts with the collector on and nothing frozen, and leaves it so."""
    assert gc.isenabled()
    gc.unfreeze()
    yield
    gc.enable()
    gc.unfreeze()


def evaluator():
    return usebatch.UseEvaluator(policy=current_policy(), purpose=PURPOSE, at=AT)


@pytest.mark.django_db
def test_blocks_hold_the_result_lines_of_each_chunk_in_order(records, collector, monkeypatch):
    monkeypatch.setattr(usebatch, "CHUNK_RECORDS", 3)
    reference = evaluator()
    expected = [
        b"".join(map(reference.result_line, reference.evaluate(chunk))) for chunk in usebatch.chunked(records, 3)
    ]
    streamed = evaluator()
    blocks = list(usebatch.result_blocks(streamed, records))
    assert blocks == expected
    assert len(blocks) == 3
    assert streamed.summary() == reference.summary()
    assert streamed.records_digest == reference.records_digest


@pytest.mark.django_db
def test_the_collector_runs_between_chunks_and_nothing_stays_frozen(records, collector, monkeypatch):
    monkeypatch.setattr(usebatch, "CHUNK_RECORDS", 3)
    seen = []
    for _ in usebatch.result_blocks(evaluator(), records):
        # The consumer's code runs with the collector on; the chunk's survivors are frozen.
        seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
    assert seen == [(True, True)] * 3
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.django_db
def test_an_abandoned_stream_unfreezes(records, collector, monkeypatch):
    monkeypatch.setattr(usebatch, "CHUNK_RECORDS", 3)
    stream = usebatch.result_blocks(evaluator(), records)
    next(stream)
    stream.close()  # the client went away
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.django_db
def test_a_failing_chunk_restores_the_collector(records, collector, monkeypatch):
    def broken(self, items):
        raise RuntimeError("database gone")

    monkeypatch.setattr(usebatch.UseEvaluator, "evaluate", broken)
    with pytest.raises(RuntimeError):
        list(usebatch.result_blocks(evaluator(), records))
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.django_db
def test_a_collector_switched_off_elsewhere_stays_off(records, collector):
    gc.disable()
    list(usebatch.result_blocks(evaluator(), records))
    assert not gc.isenabled()
