"""The supervisor with reads in flight as the journal's futures (no task per read), on a real journal file."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path

from gateway.config import SupervisorConfig
from gateway.journal import Journal, JournalReader
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, ProcessRecord
from gateway.supervisor import DeviceSupervisor
from tests.fakes import FakeEquipment, FakePlugin, Script, factory, fake_map
from tests.waiting import eventually

FAST = SupervisorConfig(backoff_initial_s=0.001, backoff_max_s=0.01, backoff_jitter=0.0)


def supervisor(journal: Journal, script: Script, seen: list[ProcessRecord]) -> DeviceSupervisor:
    eq = FakeEquipment(id="T1", equipment_class="freezer")
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64)
    return DeviceSupervisor(
        eq, factory(FakePlugin({"T1": script}), eq), pipeline, journal.append, FAST,
        on_records=seen.extend, rng=random.Random(1), max_in_flight=32, submit=journal.submit,
    )


def measured(records: Sequence[ProcessRecord]) -> list[object]:
    return [r.value for r in records if r.kind is Kind.MEASUREMENT and r.value is not None]


async def test_overlapping_reads_are_committed_reported_and_acknowledged_in_order(tmp_path: Path) -> None:
    values = [float(i) for i in range(200)]
    script = Script(connects=[values], needs_acknowledge=False)
    seen: list[ProcessRecord] = []
    async with Journal.open(tmp_path / "j.sqlite", gateway_id="gw-1") as journal:
        sup = supervisor(journal, script, seen)
        task = asyncio.create_task(sup.run())
        try:
            await eventually(lambda: any(r.kind is Kind.EVENT and r.value == "lost" for r in seen))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert journal.stats.largest_batch > 1  # reads overlapped their commits
    with JournalReader(tmp_path / "j.sqlite") as reader:
        stored = list(reader.read())
    lost = next(i for i, r in enumerate(stored) if r.kind is Kind.EVENT and r.value == "lost")
    assert measured(stored[:lost]) == values  # every read durable, in order, before the outage that followed
    # reported once each, in commit order (reads still in flight when the task was cancelled are
    # committed but not reported, as before)
    assert len(seen) > lost and [r.seq for r in seen] == [r.seq for r in stored[: len(seen)]]
    assert [b.token for b in script.acknowledged][: len(values)] == values  # each acknowledged after its commit
    assert sup.health.records == len(seen)


async def test_cancelled_with_reads_in_flight_leaves_no_gap(tmp_path: Path) -> None:
    script = Script(connects=[[float(i) for i in range(10_000)]], needs_acknowledge=False)
    seen: list[ProcessRecord] = []
    async with Journal.open(tmp_path / "j.sqlite", gateway_id="gw-1") as journal:
        task = asyncio.create_task(supervisor(journal, script, seen).run())
        await eventually(lambda: len(seen) > 50)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        last = await journal.flush()
    with JournalReader(tmp_path / "j.sqlite") as reader:
        stored = list(reader.read())
    assert [r.seq for r in stored] == list(range(1, last + 1))
    values = measured(stored)
    assert values == [float(i) for i in range(len(values))]  # a prefix of the reads, none twice, none skipped
