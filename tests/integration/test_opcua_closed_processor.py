"""The OPC UA adapter and the shipped LADS node map against the closed-processor simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from adapters.opcua import load_node_map, plugin
from adapters.opcua.config import node_map_path
from device_sims.closed_processor import ClosedProcessorSim
from gateway.adapter import SharedResources
from gateway.records import Quality, ReadingBatch
from tests.integration.test_opcua_support import Consumer, equipment, quiet_asyncua

pytestmark = pytest.mark.asyncio(loop_scope="module")
MAP = load_node_map(node_map_path("lads-closed-processor", None))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[ClosedProcessorSim]:
    quiet_asyncua()
    async with ClosedProcessorSim(
        profile="lads", port=0, seed=1, time_scale=2_000, update_interval_s=0.05, skew_s=-30
    ) as s:
        yield s


async def test_every_point_of_the_lads_map_is_on_the_simulator(sim: ClosedProcessorSim) -> None:
    seen: dict[str, object] = {}
    async with asyncio.timeout(10), plugin.create(equipment(sim), SharedResources()) as adapter:
        async with contextlib.aclosing(adapter.batches()) as batches:
            async for batch in batches:
                assert not batch.events, batch.events  # nothing quarantined: the map follows the layout
                seen.update({r.point: r for r in batch.readings})
                if set(seen) >= set(MAP.points):
                    break
    assert all(r.quality is Quality.GOOD and r.source_time and r.server_time for r in seen.values())  # type: ignore[attr-defined]
    assert seen["temperature"].source_time < seen["temperature"].server_time  # type: ignore[attr-defined]


def _since_start(batches: list[ReadingBatch]) -> list[ReadingBatch]:
    """The batch with run_started and every batch after it."""
    for i, b in enumerate(batches):
        if any(e[0] == "run_started" for e in b.events):
            return batches[i:]
    return []


async def test_a_run_started_through_the_simulator_carries_its_lot(sim: ClosedProcessorSim) -> None:
    consumer = Consumer(equipment(sim))
    started: list[asyncio.Task[str]] = []

    def done(c: Consumer) -> bool:
        if not started and c.batches:
            started.append(asyncio.get_running_loop().create_task(sim.start_program("CAR-T-STD", "LOT-SIM-01")))
        return len(_since_start(c.batches)) >= 3

    try:
        await consumer.run_until(done, timeout_s=10)
    finally:
        await asyncio.gather(*started)
        await sim.stop_program()
        await asyncio.sleep(0.1)
    (event,) = [e for e in consumer.events() if e[0] == "run_started"]
    assert event[1].startswith("run ") and event[1].endswith("template CAR-T-STD lot LOT-SIM-01")
    after = _since_start(consumer.batches)
    assert {b.lot_id for b in after} == {"LOT-SIM-01"}
    assert all(b.process_step for b in after)
    assert not consumer.errors


async def test_a_deleted_node_is_quarantined_while_the_others_flow(sim: ClosedProcessorSim) -> None:
    # asyncua's server sends nothing for a monitored node that is deleted (a spec server reports
    # BadNodeIdUnknown, covered against the test server); the next session finds the node missing.
    sim.inject("delete_node", function="Temperature")
    await asyncio.sleep(0.3)  # the simulator removes the node on its next tick
    batches: list[ReadingBatch] = []
    try:
        async with asyncio.timeout(10), plugin.create(equipment(sim), SharedResources()) as adapter:
            async with contextlib.aclosing(adapter.batches()) as stream:
                async for batch in stream:
                    batches.append(batch)
                    if len({r.point for b in batches for r in b.readings}) >= len(MAP.points):
                        break
    finally:
        await sim.restore()
    events = [e for b in batches for e in b.events]
    path = "DeviceSet/ClosedProcessor/FunctionalUnitSet/Bioreactor/FunctionSet/Temperature/CurrentValue"
    assert events == [("node_quarantined", f"temperature {path}: BadNoMatch")]
    (temp,) = [r for b in batches for r in b.readings if r.point == "temperature"]
    assert temp.quality is Quality.BAD_CONFIGURATION_ERROR
    others = [r for b in batches for r in b.readings if r.point != "temperature"]
    assert others and all(r.quality is Quality.GOOD for r in others)


async def test_a_simulator_restart_is_survived_with_one_session(sim: ClosedProcessorSim) -> None:
    consumer = Consumer(equipment(sim))
    sessions: list[int] = []
    marks: dict[str, int] = {}

    def done(c: Consumer) -> bool:
        sessions.append(sim.session_count())
        if "restart" not in marks and c.batches:
            marks["restart"] = len(c.batches)
            sim.inject("restart")
        return bool(c.errors) and c.connects >= 2 and len(c.batches) > marks["restart"] + 3

    await consumer.run_until(done, timeout_s=15)
    assert max(sessions) <= 1
    assert "CP-1" in str(consumer.errors[0][1])
    await asyncio.sleep(0.2)
    assert sim.session_count() == 0


async def test_the_rotea_like_map_reads_the_rotea_profile() -> None:
    async with ClosedProcessorSim(profile="rotea", port=0, seed=2, time_scale=2_000, update_interval_s=0.05) as rotea:
        eq = equipment(rotea, "rotea-like")
        points = set(load_node_map(node_map_path("rotea-like", None)).points)
        consumer = Consumer(eq)
        begun: list[asyncio.Task[str]] = []

        def done(c: Consumer) -> bool:
            if not begun and {r.point for b in c.batches for r in b.readings} >= points:
                begun.append(asyncio.get_running_loop().create_task(rotea.start_program("WASH-ONLY", "LOT-R-1")))
            return len(_since_start(c.batches)) >= 2

        try:
            await consumer.run_until(done, timeout_s=10)
        finally:
            await asyncio.gather(*begun)
        (event,) = [e for e in consumer.events() if e[0] == "run_started"]
        assert event[1] == "run LOT-R-1 template WASH-ONLY lot LOT-R-1"
        assert {b.lot_id for b in _since_start(consumer.batches)} == {"LOT-R-1"}
        assert not [e for e in consumer.events() if e[0] == "node_quarantined"]
        await rotea.stop_program()
