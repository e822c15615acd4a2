"""Modbus RTU over a socat pty pair: several counters on one line, as on an RS-485 bus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pymodbus.exceptions import ModbusException

from device_sims.particle_counter import ParticleCounterSim
from gateway.errors import SimulatorError

from .conftest import ClientFactory
from .support import link_exists, u32_hi_first

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")


async def test_two_units_share_a_line_and_an_absent_unit_stays_silent(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", transport="rtu", unit_ids=[1, 2], seed=20) as sim:
        assert sim.endpoint == f"rtu://{sim.serial_path}"
        client = await connect(sim)
        serials = []
        for unit in (1, 2):
            rr = await client.read_holding_registers(0, count=6, device_id=unit)
            assert not rr.isError() and rr.registers[0] == 148
            serials.append(u32_hi_first(rr.registers, 4))
        assert serials[0] != serials[1]  # two counters, not one answering twice

        with pytest.raises(ModbusException):  # no answer at all: the client times out
            await client.read_holding_registers(0, count=1, device_id=3)
        assert not (await client.read_holding_registers(0, count=1, device_id=2)).isError()  # line recovers

        sim.inject("stall", unit_id=2)  # one counter goes quiet, its neighbour keeps answering
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=2)
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [148]


async def test_rtu_disconnect_and_restore_on_the_same_path(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", transport="rtu", seed=21) as sim:
        client = await connect(sim)
        path = sim.serial_path
        assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [100]
        sim.inject("disconnect")
        with pytest.raises(ModbusException):
            await client.read_input_registers(0, count=1, device_id=1)
        await sim.restore()
        assert sim.serial_path == path
        assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [100]


async def test_missing_socat_is_a_simulator_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorError, match="socat is not installed"):
        async with ParticleCounterSim(transport="rtu"):
            pass


async def test_serial_path_option_places_the_client_link(tmp_path: Path, connect: ClientFactory) -> None:
    link = f"{tmp_path}/counter-bus"
    async with ParticleCounterSim(profile="metone6000", transport="rtu", serial_path=link, seed=22) as sim:
        assert sim.serial_path == link
        client = await connect(sim)
        assert (await client.read_holding_registers(38, count=1, device_id=1)).registers == [100]
    assert not link_exists(link)  # the link goes with the simulator
