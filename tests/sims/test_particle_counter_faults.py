"""Every fault is observable from a raw Modbus client, as a gateway would see it on site."""

from __future__ import annotations

import asyncio
import math

import pytest
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU

from device_sims.particle_counter import ParticleCounterSim, limit_per_m3, sampled_volume_m3

from .conftest import ClientFactory
from .support import eventually, u32_hi_first

FAST = 0.1


async def test_disconnect_then_restore_on_the_same_port(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", seed=10) as sim:
        client = await connect(sim)
        port = sim.port
        assert not (await client.read_holding_registers(0, count=1, device_id=1)).isError()
        sim.inject("disconnect")
        assert "disconnect" in sim.state().faults_active
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert not await client.connect()  # nothing listens any more
        await sim.restore()
        assert sim.port == port
        assert await client.connect()
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [148]
        assert "disconnect" not in sim.state().faults_active


async def test_stall_keeps_the_connection_but_never_answers(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="metone6000", seed=11) as sim:
        client = await connect(sim)
        sim.inject("stall")
        with pytest.raises(ModbusException):  # the 1 s client timeout expires
            await client.read_holding_registers(38, count=1, device_id=1)
        assert client.connected
        sim.clear("stall")
        assert (await client.read_holding_registers(38, count=1, device_id=1)).registers == [100]


async def test_illegal_address_answers_exception_2(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", seed=12) as sim:
        client = await connect(sim)
        sim.inject("illegal_address", unit_id=1)
        rr = await client.read_input_registers(0, count=1, device_id=1)
        assert rr.isError() and rr.exception_code == 2
        sim.clear("illegal_address", unit_id=1)
        assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [100]


async def test_garbage_is_not_a_frame(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", seed=13) as sim:
        client = await connect(sim)
        sim.inject("garbage")
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)

        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            writer.write(bytes.fromhex("0001 0000 0006 01 03 0000 0001"))  # MBAP + FC3, address 0, 1 register
            await writer.drain()
            data = await asyncio.wait_for(reader.read(256), timeout=2)
        finally:
            writer.close()
            await writer.wait_closed()
        assert data, "garbage means bytes arrive, unlike a stall"
        _used, pdu = FramerSocket(DecodePDU(False)).handleFrame(data, 0, 0)
        assert pdu is None

        await sim.restore()
        assert await client.connect()
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [148]


async def test_restart_resets_the_record_buffer(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=FAST, seed=14) as sim:
        client = await connect(sim)

        async def record_count() -> int:
            return (await client.read_holding_registers(23, count=1, device_id=1)).registers[0]

        await eventually(lambda: sim.state().queue_length >= 3, what="three records")
        before = await record_count()
        sim.inject("restart")
        assert await record_count() < before
        state = sim.state()
        assert state.restarts == 1 and state.running
        # numbering restarted: the newest record's number is the count of records since the restart
        assert state.current_record is None or state.current_record.seq == state.queue_length


async def test_excursion_pushes_counts_above_the_grade_limit(connect: ClientFactory) -> None:
    sample_time_s = 0.2
    async with ParticleCounterSim(profile="lighthouse", grade="A", sample_time_s=sample_time_s, seed=15) as sim:
        client = await connect(sim)
        first = sim.state().samples_produced
        sim.inject("excursion", samples=2)
        await eventually(lambda: sim.state().samples_produced >= first + 2, what="two excursion samples")
        assert not (await client.write_register(1, 12, device_id=1)).isError()  # stop: freeze the buffer
        volume = sampled_volume_m3(1.0, sample_time_s)
        for index in (first, first + 1):
            assert not (await client.write_register(24, index, device_id=1)).isError()  # 40025 record index
            regs = (await client.read_input_registers(0, count=76, device_id=1)).registers
            at_05, at_50 = u32_hi_first(regs, 10), u32_hi_first(regs, 14)  # channels 2 and 4: 0.5 and 5.0 um
            assert at_05 / volume > limit_per_m3("A", "in_operation", 0.5) == 3520
            assert at_50 / volume > limit_per_m3("A", "in_operation", 5.0) == 29
            assert u32_hi_first(regs, 6) & 0x10  # data status: threshold high
            assert regs[75] & 0b1010 == 0b1010  # particle alarm flags for the 0.5 and 5.0 um channels
        assert "excursion" not in sim.state().faults_active


SCRIPTED = [0, 1, 65535, 65536, 4294967295]


async def test_scripted_counts_reach_the_registers_exactly_high_word_first(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=FAST, seed=17) as sim:
        client = await connect(sim)
        first = sim.state().samples_produced
        sim.inject("scripted_counts", values=SCRIPTED)
        assert "scripted_counts" in sim.state().faults_active
        await eventually(lambda: sim.state().samples_produced >= first + len(SCRIPTED), what="the scripted samples")
        assert not (await client.write_register(1, 12, device_id=1)).isError()  # stop: freeze the buffer
        seen = []
        for index in range(first, first + len(SCRIPTED)):
            assert not (await client.write_register(24, index, device_id=1)).isError()  # 40025 record index
            regs = (await client.read_input_registers(0, count=24, device_id=1)).registers
            seen.append([u32_hi_first(regs, 8 + 2 * k) for k in range(4)])  # every channel
        assert seen == [[v] * 4 for v in SCRIPTED]
        assert "scripted_counts" not in sim.state().faults_active  # consumed, random counts again


async def test_scripted_counts_refuses_values_a_register_pair_cannot_hold() -> None:
    async with ParticleCounterSim(profile="lighthouse", seed=18) as sim:
        with pytest.raises(ValueError, match=r"0\.\.4294967295"):
            sim.inject("scripted_counts", values=[4294967296])
        with pytest.raises(TypeError, match="values"):
            sim.inject("scripted_counts", counts=[1])
        assert "scripted_counts" not in sim.state().faults_active


async def test_flow_and_laser_alerts_flip_active_good_bits_on_airnet(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", sample_time_s=FAST, seed=16) as sim:
        client = await connect(sim)
        sim.inject("flow_alert")
        sim.inject("laser_alert")
        await eventually(lambda: sim.state().queue_length >= 1, what="a packet")
        regs = (await client.read_input_registers(211, count=12, device_id=1)).registers
        assert regs[2] == 3  # 30214 device state: error
        assert regs[9] == 0x0004  # only HARDWARE GOOD: laser and flow are not good
        assert u32_hi_first(regs, 10) == round(0.85 * 10)  # flow 85 % of 1 CFM, x 10


async def test_flow_alert_and_calibration_overdue_on_lighthouse(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=FAST, seed=17) as sim:
        client = await connect(sim)
        sim.inject("flow_alert", flow_fraction=0.8)
        sim.inject("calibration_overdue", days=10)
        first = sim.state().samples_produced
        await eventually(lambda: sim.state().samples_produced > first, what="a sample under the alert")
        holding = (await client.read_holding_registers(0, count=48, device_id=1)).registers
        assert holding[22] == 80  # 40023 flow: 0.8 CFM
        assert u32_hi_first(holding, 46) < u32_hi_first(holding, 26)  # calibration due before the RTC
        status = u32_hi_first((await client.read_input_registers(6, count=2, device_id=1)).registers, 0)
        assert status & 0x02 and status & 0x08  # flow alert, instrument service


async def test_frozen_counts_repeat(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="metone6000", grade="D", state="at_rest", sample_time_s=FAST, seed=18) as sim:
        client = await connect(sim)
        await eventually(lambda: sim.state().queue_length >= 1, what="a sample")
        sim.inject("frozen")
        last = sim.state().current_record
        assert last is not None
        await eventually(lambda: sim.state().samples_produced >= last.seq + 2, what="two frozen samples")
        assert not (await client.write_register(104, 2, device_id=1)).isError()  # stop sampling
        newest = sim.state().current_record
        assert newest is not None and newest.seq >= last.seq + 2
        live = (await client.read_holding_registers(311, count=8, device_id=1)).registers
        assert [u32_hi_first(live, 2 * k) for k in range(4)] == list(last.counts)


async def test_clock_skew_moves_the_device_clock(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", seed=19) as sim:
        client = await connect(sim)

        async def rtc() -> int:
            return u32_hi_first((await client.read_holding_registers(0, count=2, device_id=1)).registers, 0)

        before = await rtc()
        sim.inject("clock_skew", seconds=3600)
        assert math.isclose(await rtc() - before, 3600, abs_tol=2)
        assert sim.state().clock_skew_s == 3600
        sim.clear("clock_skew")
        assert abs(await rtc() - before) <= 2


async def test_fault_arguments_are_checked() -> None:
    sim = ParticleCounterSim(profile="lighthouse")
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("meteor")
    with pytest.raises(TypeError, match="unknown parameter"):
        sim.inject("excursion", sampels=3)
    with pytest.raises(ValueError, match="whole link"):
        sim.inject("disconnect", unit_id=1)
    with pytest.raises(ValueError, match="restore"):
        sim.clear("disconnect")
    with pytest.raises(ValueError, match="not simulated"):
        sim.inject("laser_alert", unit_id=7)
