"""The OPC UA adapter against a real asyncua server with the closed processor's node layout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from asyncua import ua

from adapters.opcua import load_node_map
from adapters.opcua.config import node_map_path
from gateway.records import Quality, ReadingBatch
from tests.integration.test_opcua_support import ACTIVE, BR, DEVICE_SKEW, URI, LadsServer, equipment, first_batches

pytestmark = pytest.mark.asyncio(loop_scope="module")
MAP = load_node_map(node_map_path("lads-closed-processor", None))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LadsServer]:
    srv = LadsServer()
    await srv.start()
    yield srv
    await srv.stop()


def _seen(batches: list[ReadingBatch]) -> set[str]:
    return {r.point for b in batches for r in b.readings}


async def test_every_configured_node_arrives_with_both_timestamps(server: LadsServer) -> None:
    before = datetime.now(UTC)
    batches = await first_batches(equipment(server), lambda bs: _seen(bs) >= set(MAP.points))
    readings = {r.point: r for b in batches for r in b.readings}
    assert set(readings) == set(MAP.points)
    for name, r in readings.items():
        assert r.quality is Quality.GOOD, (name, r.detail)
        assert r.source_time is not None and r.server_time is not None, name
        assert r.source_time.tzinfo is not None and r.server_time.tzinfo is not None
        # the device clock (skewed) is the source time; the server's clock is the server time
        assert abs((r.server_time - r.source_time) - (-DEVICE_SKEW)) < timedelta(seconds=5), name
        assert r.server_time >= before - timedelta(seconds=1)
    assert readings["temperature"].value == 36.9
    assert readings["door_open"].value is False
    assert readings["device_state"].value == "Operating"
    assert readings["program_step_number"].value == 0
    host = server.endpoint.split("/cgt/")[0]
    assert readings["temperature"].source == (f"{host}/ns={URI};{BR}/FunctionSet/Temperature/CurrentValue")
    assert server.sessions() == 0, "the adapter left its session on the server"


def _readings(batches: list[ReadingBatch], point: str) -> list:
    return [r for b in batches for r in b.readings if r.point == point]


async def test_a_bad_status_on_the_server_becomes_that_quality(server: LadsServer) -> None:
    path = f"{BR}/FunctionSet/pH/CurrentValue"

    async def run() -> list[ReadingBatch]:
        eq = equipment(server)
        seen: list[ReadingBatch] = []
        from adapters.opcua import plugin
        from gateway.adapter import SharedResources

        async with plugin.create(eq, SharedResources()) as adapter:
            written = False
            async for batch in adapter.batches():
                seen.append(batch)
                if not written and _readings(seen, "ph"):
                    await server.set(path, 7.2, ua.StatusCodes.BadSensorFailure)
                    await server.set(path, 7.3, ua.StatusCodes.BadWaitingForInitialData)
                    written = True
                if len(_readings(seen, "ph")) >= 3:
                    return seen
        return seen

    try:
        seen = await run()
    finally:
        await server.set(path, 7.2)
    ph = _readings(seen, "ph")
    assert [r.quality for r in ph[:3]] == [Quality.GOOD, Quality.BAD_SENSOR_FAILURE, Quality.BAD]
    assert ph[1].server_time is not None  # a Bad value may come without its value (the server sends none)
    assert ph[2].detail == "BadWaitingForInitialData"  # no exact member: generic Bad, the code kept in words


async def test_unknown_nodes_are_quarantined_and_the_rest_flow(server: LadsServer, tmp_path) -> None:
    text = node_map_path("lads-closed-processor", None).read_text()
    text += "  gone_path: {browse_path: DeviceSet/ClosedProcessor/NoSuchThing/Value, parameter: gone_path}\n"
    text += "  gone_id: {node_id: s=no-such-node, parameter: gone_id}\n"
    (tmp_path / "map.yaml").write_text(text)
    eq = equipment(server, tmp_path / "map.yaml")
    batches = await first_batches(eq, lambda bs: _seen(bs) >= set(MAP.points) | {"gone_path", "gone_id"})
    events = [e for b in batches for e in b.events if e[0] == "node_quarantined"]
    assert sorted(events) == [
        ("node_quarantined", "gone_id s=no-such-node: BadNodeIdUnknown"),
        ("node_quarantined", "gone_path DeviceSet/ClosedProcessor/NoSuchThing/Value: BadNoMatch"),
    ]
    for name in ("gone_path", "gone_id"):
        (r,) = _readings(batches, name)
        assert r.quality is Quality.BAD_CONFIGURATION_ERROR and r.value is None
    assert all(r.quality is Quality.GOOD for b in batches for r in b.readings if r.point in MAP.points)


async def test_a_node_that_later_reports_unknown_is_quarantined(server: LadsServer) -> None:
    path = f"{BR}/FunctionSet/Viability/CurrentValue"
    from adapters.opcua import plugin
    from gateway.adapter import SharedResources

    seen: list[ReadingBatch] = []
    try:
        async with plugin.create(equipment(server), SharedResources()) as adapter:
            async for batch in adapter.batches():
                seen.append(batch)
                if len(_readings(seen, "viability")) == 1 and not any(b.events for b in seen):
                    await server.set(path, 95.0, ua.StatusCodes.BadNodeIdUnknown)
                    await server.set(f"{BR}/FunctionSet/Agitation/CurrentValue", 61.0)
                if any(e[0] == "node_quarantined" for b in seen for e in b.events) and any(
                    r.value == 61.0 for r in _readings(seen, "agitation")
                ):
                    break
    finally:
        await server.set(path, 95.0)
    assert [e for b in seen for e in b.events] == [("node_quarantined", f"viability {path}: BadNodeIdUnknown")]


async def test_a_started_run_yields_run_started_with_the_lot_on_batches(server: LadsServer) -> None:
    from adapters.opcua import plugin
    from gateway.adapter import SharedResources

    seen: list[ReadingBatch] = []
    try:
        async with plugin.create(equipment(server), SharedResources()) as adapter:
            stage = 0
            async for batch in adapter.batches():
                seen.append(batch)
                if stage == 0 and _seen(seen) >= set(MAP.points):
                    for leaf, value in (
                        ("DeviceProgramRunId", "RUN-7"),
                        ("SupervisoryJobId", "LOT-2026-001"),
                        ("ProgramTemplateId", "CAR-T-STD"),
                        ("CurrentStepName", "prime"),
                        ("CurrentStepNumber", 1),
                        ("CurrentState", "Running.Execute"),
                    ):
                        await server.set(f"{ACTIVE}/{leaf}", value)
                    stage = 1
                elif stage == 1 and any(e[0] == "run_started" for e in batch.events):
                    await server.set(f"{BR}/FunctionSet/Temperature/CurrentValue", 37.1)
                    stage = 2
                elif stage == 2 and any(r.value == 37.1 for r in batch.readings):
                    await server.set(f"{ACTIVE}/CurrentState", "Stopped")
                    await server.set(f"{ACTIVE}/DeviceProgramRunId", "")
                    stage = 3
                elif stage == 3 and any(e[0] == "run_ended" for e in batch.events):
                    break
    finally:
        for leaf, value in (
            ("DeviceProgramRunId", ""),
            ("SupervisoryJobId", ""),
            ("ProgramTemplateId", ""),
            ("CurrentStepName", ""),
            ("CurrentStepNumber", 0),
            ("CurrentState", "Stopped"),
        ):
            await server.set(f"{ACTIVE}/{leaf}", value)
        await server.set(f"{BR}/FunctionSet/Temperature/CurrentValue", 36.9)
    events = [e for b in seen for e in b.events]
    assert events == [
        ("run_started", "run RUN-7 template CAR-T-STD lot LOT-2026-001"),
        ("run_ended", "run RUN-7 lot LOT-2026-001: state Stopped"),
    ]
    (during,) = [b for b in seen if any(r.value == 37.1 for r in b.readings)]
    assert (during.lot_id, during.process_step) == ("LOT-2026-001", "prime")
    assert seen[0].lot_id is None


async def test_poll_mode_reads_every_node_in_chunks(server: LadsServer) -> None:
    assert server.server is not None
    limit = server.server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead, 0))
    translate = server.server.get_node(
        ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds, 0)
    )
    before = (await limit.read_value(), await translate.read_value())
    await limit.write_value(ua.Variant(4, ua.VariantType.UInt32))
    await translate.write_value(ua.Variant(3, ua.VariantType.UInt32))
    try:
        batches = await first_batches(equipment(server, mode="poll"), lambda bs: len(bs) >= 2)
    finally:
        await limit.write_value(ua.Variant(before[0], ua.VariantType.UInt32))
        await translate.write_value(ua.Variant(before[1], ua.VariantType.UInt32))
    for batch in batches[:2]:
        readings = {r.point: r for r in batch.readings}
        assert set(readings) == set(MAP.points)
        assert all(r.quality is Quality.GOOD and r.source_time and r.server_time for r in readings.values())
    assert server.sessions() == 0


async def test_several_values_of_one_node_in_one_publish_are_all_delivered(server: LadsServer) -> None:
    from adapters.opcua import plugin
    from gateway.adapter import SharedResources

    path = f"{BR}/FunctionSet/Agitation/CurrentValue"
    wanted = [61.5 + i for i in range(8)]
    got: list[float] = []
    written: list[bool] = []
    eq = equipment(server, publishing_interval_ms=400)  # all eight land in one publish (queue_size 10)
    try:
        async with asyncio.timeout(10), plugin.create(eq, SharedResources()) as adapter:
            async for batch in adapter.batches():
                points = [r.point for r in batch.readings]
                assert len(points) == len(set(points)), "a point twice in one batch would lose a value"
                got += [r.value for r in batch.readings if r.point == "agitation"]
                if len(got) == 1 and not written:
                    written.append(True)
                    for value in wanted:  # 80 ms in all, within one 400 ms publish
                        await server.set(path, value)
                        await asyncio.sleep(0.01)  # asyncua's server coalesces writes in one tick
                if set(wanted) <= set(got):
                    break
    finally:
        await server.set(path, 60.0)
    # every value reached a batch; asyncua's server was seen to send the last values of such a burst
    # twice (once ahead of the rest), so this checks presence, not order
    assert set(got[1:]) == set(wanted)


async def test_a_missing_namespace_is_one_clear_error_and_close_is_idempotent(server: LadsServer, tmp_path) -> None:
    from adapters.opcua import plugin
    from gateway.adapter import SharedResources
    from gateway.errors import DeviceReportedError

    text = node_map_path("lads-closed-processor", None).read_text().replace(URI, "urn:nobody:here")
    (tmp_path / "map.yaml").write_text(text)
    with pytest.raises(DeviceReportedError, match="the server has no namespace 'urn:nobody:here'") as err:
        await first_batches(equipment(server, tmp_path / "map.yaml"), lambda bs: True)
    assert str(err.value).startswith(f"CP-1 {server.endpoint}: ")
    assert server.sessions() == 0

    adapter = plugin.create(equipment(server), SharedResources())
    async with adapter:
        assert server.sessions() == 1
    await adapter.close()  # a second close is harmless
    await adapter.close()
    assert server.sessions() == 0
