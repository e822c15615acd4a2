"""The forwarder: store-and-forward from the journal to one sink, in order, settled durably.

The sink here is scripted (the forwarder is under test, not a protocol); the journal is a real file.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import JournalError
from gateway.journal import Journal, JournalReader, verify
from gateway.records import utc_now
from gateway.sinks import Outcome, SinkBatch, SinkConfig, SinkError
from gateway.sinks.forwarder import Forwarder, cursor_name
from tests.sinks.records import GATEWAY_ID, draft
from tests.sinks.scripted import ScriptedSink
from tests.waiting import eventually


def config(**fields: Any) -> SinkConfig:
    base: dict[str, Any] = {
        "name": "mes",
        "type": "scripted",
        "batch": {"max_records": 100, "max_age_s": 0.0},
        "retry": {"initial_s": 0.01, "max_s": 0.05, "jitter": 0},
    }
    return SinkConfig.model_validate(base | fields)


@contextlib.asynccontextmanager
async def forwarding(journal: Journal, sink: ScriptedSink, cfg: SinkConfig | None = None) -> AsyncIterator[Forwarder]:
    forwarder = Forwarder(sink, cfg or config(), journal, rng=random.Random(1))
    task = asyncio.create_task(forwarder.run())
    try:
        yield forwarder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    await eventually(condition, timeout_s=timeout_s)


async def append(journal: Journal, n: int, start: int = 0, **overrides: Any) -> None:
    await journal.append([(draft(i, **overrides), f"frame {i}".encode()) for i in range(start, start + n)])


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal.open(tmp_path / "journal.sqlite", gateway_id=GATEWAY_ID) as j:
        yield j


async def test_delivers_every_record_in_order_and_remembers_where_it_got_to(journal: Journal) -> None:
    sink = ScriptedSink()
    await append(journal, 250)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 250)
    assert [len(b) for b in sink.batches] == [100, 100, 50]
    assert sink.seqs() == list(range(1, 251))
    assert all(n == 1 for n in sink.accepted.values())
    with JournalReader(journal.path) as reader:
        assert reader.get_cursor(cursor_name("mes")) == 250
    # a restart resumes after the cursor: nothing is sent twice
    again = ScriptedSink()
    await append(journal, 5, start=250)
    async with forwarding(journal, again) as fwd:
        await until(lambda: fwd.status.cursor == 255)
    assert again.seqs() == list(range(251, 256))


async def test_records_on_the_wire_are_the_journal_records_with_hash_and_delivery(journal: Journal) -> None:
    sink = ScriptedSink()
    await append(journal, 3)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 3)
    batch = sink.batches[0]
    assert batch.gateway_id == GATEWAY_ID and batch.seqs == (1, 2, 3) and batch.attempt == 1
    assert batch.idempotency_key == f"{GATEWAY_ID}:1-3"
    with JournalReader(journal.path) as reader:
        stored = list(reader.read())
    for wire, record in zip(batch.records, stored, strict=True):
        assert wire["hash"] == record.hash and wire["seq"] == record.seq and wire["value"] == record.value
        assert wire["delivery"] == {"late": True}  # committed in 2025: long before it is sent
        assert "raw_sha256" in wire


async def test_a_record_sent_soon_after_commit_is_not_late(journal: Journal) -> None:
    sink = ScriptedSink()
    await append(journal, 1, gateway_time=utc_now())
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 1)
    assert sink.batches[0].records[0]["delivery"] == {"late": False}


async def test_a_partial_batch_waits_at_most_max_age_then_goes(journal: Journal) -> None:
    sink = ScriptedSink()
    cfg = config(batch={"max_records": 1000, "max_age_s": 0.2})
    async with forwarding(journal, sink, cfg) as fwd:
        await append(journal, 1)
        await asyncio.sleep(0.05)
        await append(journal, 2, start=1)
        await until(lambda: fwd.status.cursor == 3, timeout_s=5)
    assert [b.seqs for b in sink.batches] == [(1, 2, 3)]  # gathered into one batch, not sent at once


async def test_a_full_batch_goes_without_waiting_for_max_age(journal: Journal) -> None:
    sink = ScriptedSink()
    cfg = config(batch={"max_records": 10, "max_age_s": 3600})
    async with forwarding(journal, sink, cfg) as fwd:
        await append(journal, 10)
        await until(lambda: fwd.status.cursor == 10, timeout_s=5)


async def test_a_failed_write_reconnects_and_resends_the_same_records_in_order(journal: Journal) -> None:
    sink = ScriptedSink(steps=[SinkError("MES answered 503"), SinkError("MES answered 503"), "ok"])
    await append(journal, 20)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 20)
        assert fwd.status.failures == 2 and fwd.status.last_error is None
    assert [b.attempt for b in sink.batches] == [1, 2, 3]
    assert all(b.seqs == tuple(range(1, 21)) for b in sink.batches)
    assert sink.connects == 3 and sink.closes >= 2
    assert sink.seqs() == list(range(1, 21))


async def test_an_unreachable_receiver_keeps_records_until_it_comes_back(journal: Journal) -> None:
    sink = ScriptedSink(connect_failures=[SinkError("connection refused")] * 5)
    await append(journal, 10)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 10)
    assert sink.connects == 6 and sink.seqs() == list(range(1, 11))


def reject(seqs: set[int]) -> Callable[[SinkBatch], list[Outcome]]:
    return lambda b: [Outcome.rejected(f"unknown lot for {s}") if s in seqs else Outcome.accepted() for s in b.seqs]


async def test_a_permanent_reject_is_dead_lettered_with_an_audit_entry_and_the_rest_flows(journal: Journal) -> None:
    sink = ScriptedSink(steps=[reject({4})])
    await append(journal, 10)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 10)
        assert fwd.status.rejected == 1 and fwd.status.delivered == 9 and fwd.status.dead_letters == 1
    assert sink.seqs() == [s for s in range(1, 11) if s != 4]
    with JournalReader(journal.path) as reader:
        (letter,) = reader.dead_letters()
        audit = reader.audit()
    assert (letter.sink, letter.seq, letter.reason) == ("sink:mes", 4, "unknown lot for 4")
    assert [(e["action"], e["subject"], e["reason"]) for e in audit] == [
        ("delivery.rejected", "sink:mes seq 4", "unknown lot for 4")
    ]
    assert verify(journal.path).ok


def retry_from(seq: int) -> Callable[[SinkBatch], list[Outcome]]:
    return lambda b: [Outcome.retry("busy") if s >= seq else Outcome.accepted() for s in b.seqs]


async def test_a_retry_mid_batch_settles_the_prefix_and_resends_the_rest_in_order(journal: Journal) -> None:
    sink = ScriptedSink(steps=[retry_from(7)])
    await append(journal, 10)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 10)
    assert [b.seqs for b in sink.batches] == [tuple(range(1, 11)), tuple(range(7, 11))]
    assert sink.batches[1].attempt == 2
    assert all(n == 1 for n in sink.accepted.values()) and sink.seqs() == list(range(1, 11))


async def test_a_sink_answering_the_wrong_number_of_outcomes_is_a_failed_write(journal: Journal) -> None:
    sink = ScriptedSink(steps=[lambda b: [Outcome.accepted()]])
    await append(journal, 3)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 3)
        assert fwd.status.failures == 1
    assert len(sink.batches) == 2 and sink.batches[1].attempt == 2
    assert sink.seqs() == [1, 2, 3]


async def test_a_crashing_sink_does_not_stop_forwarding(journal: Journal) -> None:
    sink = ScriptedSink(steps=[RuntimeError("bug in a sink")])
    await append(journal, 3)
    async with forwarding(journal, sink) as fwd:
        await until(lambda: fwd.status.cursor == 3)
    assert sink.seqs() == [1, 2, 3]


async def test_a_transaction_on_disk_before_the_writer_reports_it_is_not_sent_early(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file can hold a commit the writer has not yet taken back from its thread; sending it
    then would move the cursor past the writer's head. Hold a durable commit in that window."""
    sink = ScriptedSink()
    await append(journal, 10)
    durable, release = threading.Event(), threading.Event()
    commit = journal._store.commit

    def commit_then_hold(*args: Any) -> Any:
        outcome = commit(*args)
        durable.set()
        release.wait(10)
        return outcome

    monkeypatch.setattr(journal._store, "commit", commit_then_hold)
    more = asyncio.create_task(append(journal, 10, start=10))
    await asyncio.to_thread(durable.wait, 10)
    with JournalReader(journal.path) as reader:
        assert reader.last_seq() == 20 and journal.last_seq == 10
    async with forwarding(journal, sink) as fwd:
        await until(lambda: bool(sink.batches))  # settling waits for the held commit: same writer thread
        assert sink.seqs() == list(range(1, 11))
        release.set()
        await more
        await until(lambda: fwd.status.cursor == 20)
    assert sink.seqs() == list(range(1, 21))


async def test_records_committed_while_forwarding_follow_without_polling(journal: Journal) -> None:
    sink = ScriptedSink()
    async with forwarding(journal, sink) as fwd:
        for start in range(0, 50, 10):
            await append(journal, 10, start=start)
            await until(lambda s=start: fwd.status.cursor == s + 10)
    assert sink.seqs() == list(range(1, 51))


async def test_drained_returns_once_everything_committed_is_settled(journal: Journal) -> None:
    sink = ScriptedSink(steps=[SinkError("down")])
    await append(journal, 30)
    async with forwarding(journal, sink) as fwd:
        async with asyncio.timeout(10):
            await fwd.drained()
        assert fwd.status.cursor == 30 and fwd.snapshot().backlog == 0


async def test_backlog_and_its_age_are_visible_while_the_receiver_is_down(journal: Journal) -> None:
    sink = ScriptedSink(connect_failures=[SinkError("down")] * 1000)
    await append(journal, 5, gateway_time=utc_now() - timedelta(seconds=30))
    async with forwarding(journal, sink, config(retry={"initial_s": 0.01, "max_s": 0.01, "jitter": 0})) as fwd:
        await until(lambda: sink.connects >= 2)
        status = fwd.snapshot()
    assert status.backlog == 5 and status.cursor == 0
    assert status.backlog_age_s >= 30
    assert status.state in ("connecting", "backing_off") and "down" in (status.last_error or "")
    assert status.as_dict()["backlog"] == 5


async def test_a_sink_added_after_pruning_starts_where_the_journal_starts(journal: Journal) -> None:
    await append(journal, 10)
    assert await journal.prune(6, utc_now()) == 6
    sink = ScriptedSink()
    async with forwarding(journal, sink, config(name="late-comer")) as fwd:
        await until(lambda: fwd.status.cursor == 10)
    assert sink.seqs() == [7, 8, 9, 10]
    with JournalReader(journal.path) as reader:
        actions = [e["action"] for e in reader.audit()]
    assert actions == ["journal.pruned", "delivery.skipped_pruned"]


async def test_a_closed_journal_ends_a_waiting_forwarder_with_a_journal_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite", gateway_id=GATEWAY_ID)
    await journal.start()
    waiter = asyncio.create_task(journal.wait_for_commit(0))
    await asyncio.sleep(0)
    await journal.close()
    with pytest.raises(JournalError, match="not open"):
        await waiter


async def test_a_shutdown_drain_sends_a_partial_batch_without_waiting_for_max_age(journal: Journal) -> None:
    sink = ScriptedSink()
    cfg = config(batch={"max_records": 1000, "max_age_s": 3600})
    async with forwarding(journal, sink, cfg) as fwd:
        await append(journal, 7)
        await until(lambda: fwd.status.state == "idle" and journal.last_seq == 7)
        async with asyncio.timeout(5):
            await fwd.drained()
    assert sink.seqs() == list(range(1, 8))
