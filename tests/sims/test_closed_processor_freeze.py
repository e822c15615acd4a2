"""A frozen closed processor answers nothing, on the connections it has and on new ones, until cleared."""

from __future__ import annotations

import pytest
from asyncua import Client

from device_sims.closed_processor import ClosedProcessorSim

pytestmark = pytest.mark.asyncio
STATE = "DeviceSet/ClosedProcessor/DeviceState/CurrentState"


async def _state(client: Client) -> str:
    idx = await client.get_namespace_index("urn:cgt-gateway:sim:closed-processor")
    node = await client.nodes.objects.get_child("/".join(f"{idx}:{p}" for p in STATE.split("/")))
    return str(await node.read_value())


async def test_freeze_leaves_requests_unanswered_until_cleared() -> None:
    async with ClosedProcessorSim() as sim:
        client = Client(sim.endpoint, timeout=0.5)
        await client.connect()
        assert await _state(client) == "Operating"
        sim.inject("freeze")
        assert "freeze" in sim.state().faults_active
        with pytest.raises(TimeoutError):
            await _state(client)
        with pytest.raises(TimeoutError):  # a connection made while frozen is not answered either
            await Client(sim.endpoint, timeout=0.5).connect()
        sim.clear("freeze")
        assert await _state(client) == "Operating"  # the same connection, read again
        await client.disconnect()
        async with Client(sim.endpoint, timeout=10) as fresh:
            assert await _state(fresh) == "Operating"
