"""The OPC UA adapter against a real asyncua server with the closed processor's node layout."""

from __future__ import annotations

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
    assert readings["temperature"].source == (
        f"{host}/ns={URI};{BR}/FunctionSet/Temperature/CurrentValue"
    )
    assert server.sessions() == 0, "the adapter left its session on the server"
