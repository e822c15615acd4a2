"""The supervisor: outages become data, failures and recoveries are logged once, devices are isolated."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from gateway.config import SupervisorConfig
from gateway.errors import CommunicationError, DeviceReportedError
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.records import Kind, ProcessRecord, Quality, ReadingBatch
from gateway.supervisor import DeviceSupervisor, backoff_delays
from tests.fakes import Collector, FakeEquipment, FakePlugin, Script, factory, fake_map

FAST = SupervisorConfig(backoff_initial_s=0.001, backoff_max_s=0.01, backoff_jitter=0.0)


def supervisor(eq: FakeEquipment, plugin: FakePlugin, sink: Collector) -> DeviceSupervisor:
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64)
    return DeviceSupervisor(eq, factory(plugin, eq), pipeline, sink, FAST, rng=random.Random(1))


def events(drafts: list) -> list[str]:
    return [d.value for d in drafts if d.kind is Kind.EVENT]


async def run_until(sup: DeviceSupervisor, sink: Collector, predicate) -> None:
    task = asyncio.create_task(sup.run())
    try:
        await sink.until(predicate)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = SupervisorConfig(backoff_initial_s=1, backoff_max_s=30, backoff_jitter=0.2)
    delay = backoff_delays(policy, random.Random(7))
    samples = [delay(n) for n in range(12)]
    assert 0.8 <= samples[0] <= 1.2 and 1.6 <= samples[1] <= 2.4
    assert all(24 <= s <= 36 for s in samples[6:])
    no_jitter = backoff_delays(policy.model_copy(update={"backoff_jitter": 0.0}), random.Random())
    assert [no_jitter(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


async def test_outage_is_journalled_once_as_event_and_bad_records() -> None:
    eq = FakeEquipment(id="T1", equipment_class="freezer", points=["temperature", "pressure"])
    down = CommunicationError("connection refused", equipment_id="T1", address="fake://x")
    plugin = FakePlugin({"T1": Script(connects=[down, down, down, down, [1.0, 2.0]])})
    sink = Collector()
    with capture_logs() as logs:
        await run_until(supervisor(eq, plugin, sink), sink, lambda d: len([x for x in d if x.value == 2.0]) == 2)
    drafts = sink.drafts
    assert events(drafts)[:2] == ["lost", "restored"]
    first_outage = drafts[: next(i for i, d in enumerate(drafts) if d.value == "restored")]
    lost = [d for d in first_outage if d.value is None]
    assert {d.parameter for d in lost} == {"temperature", "pressure"}
    assert all(d.quality is Quality.BAD_COMMUNICATION_ERROR and "connection refused" in d.detail for d in lost)
    # four failed attempts, one warning; one recovery line
    assert [e["event"] for e in logs if e["log_level"] == "warning"].count("device unreachable") == 1
    assert [e["event"] for e in logs if e["event"] == "device recovered"] == ["device recovered"]


async def test_device_error_quality_is_kept() -> None:
    eq = FakeEquipment(id="T1", equipment_class="freezer")
    err = DeviceReportedError("illegal data address", code=2, equipment_id="T1")
    plugin = FakePlugin({"T1": Script(connects=[err])})
    sink = Collector()
    await run_until(supervisor(eq, plugin, sink), sink, lambda d: len(d) >= 2)
    assert sink.drafts[1].quality is Quality.BAD_DEVICE_FAILURE


async def test_acknowledge_follows_commit() -> None:
    eq = FakeEquipment(id="T1", equipment_class="freezer")
    script = Script(connects=[[1.0, 2.0, 3.0]])
    sink = Collector()
    await run_until(supervisor(eq, FakePlugin({"T1": script}), sink), sink,
                    lambda d: sum(1 for x in d if x.value == 3.0) == 1)
    await asyncio.sleep(0)
    committed = [d.value for d in sink.drafts if d.kind is Kind.MEASUREMENT and d.value is not None]
    assert [b.token for b in script.acknowledged][: len(committed)] == committed[: len(script.acknowledged)]


async def test_one_failing_device_does_not_stop_another() -> None:
    good = FakeEquipment(id="OK", equipment_class="freezer")
    bad = FakeEquipment(id="BAD", equipment_class="freezer")
    plugin = FakePlugin({
        "OK": Script(connects=[[float(i) for i in range(50)]]),
        "BAD": Script(connects=[RuntimeError("adapter bug")]),
    })
    sink = Collector()
    tasks = [asyncio.create_task(supervisor(eq, plugin, sink).run()) for eq in (good, bad)]
    try:
        await sink.until(lambda d: any(x.equipment_id == "OK" and x.value == 49.0 for x in d)
                         and plugin.scripts["BAD"].attempts > 2)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    bad_lost = [d for d in sink.drafts if d.equipment_id == "BAD" and d.kind is Kind.EVENT]
    assert bad_lost[0].value == "lost" and "adapter bug" in bad_lost[0].detail
    assert plugin.scripts["BAD"].attempts > 1  # kept retrying


class SlowCollector(Collector):
    """A journal whose commits take a while, so reads can overlap them."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, entries: Sequence[Entry]) -> Sequence[ProcessRecord]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.002)
        self.in_flight -= 1
        return await super().__call__(entries)


@pytest.mark.parametrize("needs_acknowledge", [True, False])
async def test_reads_overlap_commits_only_when_nothing_is_acknowledged(needs_acknowledge: bool) -> None:
    eq = FakeEquipment(id="T1", equipment_class="freezer")
    values = [float(i) for i in range(40)]
    script = Script(connects=[values], needs_acknowledge=needs_acknowledge)
    sink = SlowCollector()
    await run_until(supervisor(eq, FakePlugin({"T1": script}), sink), sink,
                    lambda d: any(x.kind is Kind.EVENT and x.value == "lost" for x in d))
    measured = [d.value for d in sink.drafts if d.kind is Kind.MEASUREMENT and d.value is not None]
    assert measured == values  # every read committed, in order, before the outage that followed them
    assert [b.token for b in script.acknowledged] == values  # each acknowledged, in order, after its commit
    assert (sink.most_in_flight > 1) is (not needs_acknowledge)


class SwallowingAdapter:
    """Loses a cancellation the way Python 3.11's wait_for can when an answer arrives at that moment."""

    needs_acknowledge = False
    swallowed = 0

    async def __aenter__(self) -> SwallowingAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self):
        while True:
            try:
                await asyncio.sleep(0.001)
            except asyncio.CancelledError:
                if SwallowingAdapter.swallowed:
                    raise
                SwallowingAdapter.swallowed += 1  # the library bug, once: the answer won, the cancel is gone
            yield ReadingBatch("T1", [])

    async def acknowledge(self, batch: ReadingBatch) -> None:
        return None


async def test_a_cancellation_a_library_swallowed_still_stops_the_device_task() -> None:
    eq = FakeEquipment(id="T1", equipment_class="freezer")
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64)
    sup = DeviceSupervisor(eq, SwallowingAdapter, pipeline, Collector(), FAST)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=2)  # does not cancel again: the first cancellation must suffice
    stopped = task.done()
    if not stopped:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert stopped and task.cancelled(), "the device task ran on after its cancellation was swallowed"
