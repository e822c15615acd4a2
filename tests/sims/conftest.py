"""Fixtures for the simulator tests: raw pymodbus clients that are always closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from device_sims.particle_counter import ParticleCounterSim

ClientFactory = Callable[[ParticleCounterSim], Awaitable[AsyncModbusTcpClient | AsyncModbusSerialClient]]


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """Connect a raw pymodbus client to a running simulator: timeout 1 s, no retries, no reconnect."""
    clients: list[AsyncModbusTcpClient | AsyncModbusSerialClient] = []

    async def factory(sim: ParticleCounterSim) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if sim.transport == "tcp":
            client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0, reconnect_delay=0)
        else:
            assert sim.serial_path is not None
            client = AsyncModbusSerialClient(
                sim.serial_path, framer=FramerType.RTU, baudrate=19200, timeout=1, retries=0, reconnect_delay=0
            )
        clients.append(client)
        assert await client.connect(), f"cannot connect to {sim.endpoint}"
        return client

    yield factory
    for client in clients:
        client.close()
    await asyncio.sleep(0)
