"""Each profile over Modbus TCP exposes samples with the documented encodings (DOMAIN.md section 2)."""

from __future__ import annotations

import time

import pytest

from device_sims.particle_counter import ParticleCounterSim, sampled_volume_m3

from .conftest import ClientFactory
from .support import ascii_text, eventually, f32_high_word_first, f32_low_word_first, u32_hi_first

FAST = 0.1  # seconds per sample: fast enough to see several samples in a test


# -- Lighthouse ----------------------------------------------------------------------------------
async def test_lighthouse_identity_and_settings(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=1.0, seed=1) as sim:
        client = await connect(sim)
        rr = await client.read_holding_registers(0, count=48, device_id=1)
        assert not rr.isError()
        regs = rr.registers
        assert regs[0] == 148  # 40001 map version
        assert regs[1] == 0  # 40002 command register reads 0
        assert regs[3] == 210  # 40004 firmware
        assert ascii_text(regs[6:14]) == "REMOTE SIM"  # 40007-14
        assert ascii_text(regs[14:22]) == "5104-SIM"  # 40015-22
        assert regs[22] == 100  # 40023: 100 = 1 CFM
        assert regs[24] == 0xFFFF  # 40025: -1 = latest record
        assert abs(u32_hi_first(regs, 26) - time.time()) < 5  # 40027/28 RTC, high word first
        assert u32_hi_first(regs, 32) == 1  # 40033/34 sample time
        assert u32_hi_first(regs, 46) > time.time() + 30 * 86_400  # 40047/48 calibration due


async def test_lighthouse_record_uses_hi_first_ints_and_low_first_floats(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", grade="C", sample_time_s=FAST, seed=2) as sim:
        client = await connect(sim)
        await eventually(lambda: sim.state().queue_length >= 1, what="a first record")
        assert not (await client.write_register(24, 0, device_id=1)).isError()  # 40025 = record 0 (oldest)
        record = sim.state().oldest_record
        assert record is not None
        rr = await client.read_input_registers(0, count=76, device_id=1)
        regs = rr.registers
        assert u32_hi_first(regs, 0) == record.timestamp  # 30001/02
        assert u32_hi_first(regs, 4) == 1  # 30005/06 location
        counts = [u32_hi_first(regs, 8 + 2 * k) for k in range(4)]  # 30009/10 .. 30015/16
        assert counts == list(record.counts)
        assert counts == sorted(counts, reverse=True)  # cumulative: >= 0.3 um counts the most
        assert counts[1] > 0  # grade C at 20 % of its limit gives tens of counts per 0.1 s at 0.5 um
        temperature = f32_low_word_first(regs, 40)  # 30041/42, low word first
        assert temperature == pytest.approx(record.temperature_c, abs=1e-4)
        assert abs(f32_high_word_first(regs, 40) - record.temperature_c) > 1  # the classic parser bug
        assert f32_low_word_first(regs, 42) == pytest.approx(record.rh_pct, abs=1e-4)
        assert regs[72] == 0b11  # 30073 valid analog channels
        assert regs[73] == 0b1111  # 30074 valid particle channels


async def test_lighthouse_new_data_cleared_by_reading_a_record(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=FAST, seed=3) as sim:
        client = await connect(sim)

        async def status() -> int:
            return (await client.read_holding_registers(2, count=1, device_id=1)).registers[0]

        await eventually(lambda: sim.state().new_data, what="NEW DATA")
        assert not (await client.write_register(1, 12, device_id=1)).isError()  # instrument stop
        assert await status() == 0b0100  # NEW DATA only: not RUNNING, not SAMPLING
        await client.read_input_registers(0, count=10, device_id=1)
        assert await status() == 0
        count = (await client.read_holding_registers(23, count=1, device_id=1)).registers[0]
        assert count == sim.state().queue_length >= 1  # 40024 record count
        assert not (await client.write_register(1, 3, device_id=1)).isError()  # clear data buffer
        assert (await client.read_holding_registers(23, count=1, device_id=1)).registers[0] == 0
        assert not (await client.write_register(1, 11, device_id=1)).isError()  # instrument start
        assert await status() & 0b11 == 0b11  # RUNNING and SAMPLING
        await eventually(lambda: sim.state().queue_length >= 1, what="a record after restart")


async def test_lighthouse_refuses_what_the_map_does_not_allow(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", seed=4) as sim:
        client = await connect(sim)
        fc16 = await client.write_registers(34, [0, 1], device_id=1)  # only FC 3, 4 and 6 are documented
        assert fc16.isError() and fc16.exception_code == 1
        beyond = await client.read_holding_registers(40, count=20, device_id=1)  # map ends at 40048
        assert beyond.isError() and beyond.exception_code == 2
        read_only = await client.write_register(0, 1, device_id=1)  # map version
        assert read_only.isError() and read_only.exception_code == 2
        bad_command = await client.write_register(1, 99, device_id=1)
        assert bad_command.isError() and bad_command.exception_code == 3


async def test_lighthouse_set_rtc_from_data_set(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", seed=5) as sim:
        client = await connect(sim)
        target = 1_800_000_000
        for address, value in ((34, target >> 16), (35, target & 0xFFFF), (1, 13)):  # 40035/36, command 13
            assert not (await client.write_register(address, value, device_id=1)).isError()
        rtc = u32_hi_first((await client.read_holding_registers(26, count=2, device_id=1)).registers, 0)
        assert target <= rtc <= target + 2


async def test_lighthouse_sample_time_takes_effect_on_the_low_word(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=1.0, seed=23) as sim:
        client = await connect(sim)
        assert not (await client.write_register(32, 0, device_id=1)).isError()  # 40033 high word
        assert sim.state().sample_time_s == 1.0
        assert not (await client.write_register(33, 90, device_id=1)).isError()  # 40034 low word
        assert sim.state().sample_time_s == 90.0
        assert (await client.write_register(33, 0, device_id=1)).exception_code == 3  # 0 s is refused
        regs = (await client.read_holding_registers(32, count=2, device_id=1)).registers
        assert u32_hi_first(regs, 0) == 90
        sim.inject("restart")
        assert sim.state().sample_time_s == 90.0  # settings survive a power cycle


# -- MET ONE 6000 --------------------------------------------------------------------------------
async def test_metone_live_sample_block(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="metone6000", grade="C", sample_time_s=FAST, seed=6) as sim:
        client = await connect(sim)
        identity = (await client.read_holding_registers(0, count=42, device_id=1)).registers
        assert ascii_text(identity[0:15]) == "Met One Instruments"
        assert identity[38] == 100  # firmware V1.00
        await eventually(lambda: sim.state().queue_length >= 1, what="a first sample")
        assert not (await client.write_register(104, 2, device_id=1)).isError()  # sample control: stop
        record = sim.state().current_record
        assert record is not None and not sim.state().running
        live = (await client.read_holding_registers(300, count=54, device_id=1)).registers
        assert u32_hi_first(live, 0) == record.timestamp  # 300/301
        assert u32_hi_first(live, 7) == round(record.volume_m3 * 10_000)  # 307/308 litres x 10
        assert live[9] == 0  # 309 status: no faults
        counts = [u32_hi_first(live, 11 + 2 * k) for k in range(4)]  # 311, 313, 315, 317
        assert counts == list(record.counts)
        assert live[43] == 283  # 343 flow, L/min x 10
        assert live[44] == round(record.temperature_c * 10)  # 344 temperature 0.1 degC
        assert live[45] == round(record.rh_pct * 10)  # 345 RH 0.1 %
        assert live[53] == 1  # 353 location

        assert not (await client.write_register(144, 1, device_id=1)).isError()  # differential counts
        live = (await client.read_holding_registers(311, count=8, device_id=1)).registers
        assert [u32_hi_first(live, 2 * k) for k in range(4)] == list(record.differential())

        assert not (await client.write_register(143, 3, device_id=1)).isError()  # counts per m3
        live = (await client.read_holding_registers(311, count=8, device_id=1)).registers
        per_m3 = [round(c / record.volume_m3) for c in record.differential()]
        assert [u32_hi_first(live, 2 * k) for k in range(4)] == per_m3

        assert (await client.write_register(144, 7, device_id=1)).exception_code == 3


async def test_metone_period_and_clock_settings(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="metone6000", sample_time_s=1.0, seed=24) as sim:
        client = await connect(sim)
        assert not (await client.write_register(107, 130, device_id=1)).isError()  # 1 min 30 s
        assert sim.state().sample_time_s == 90.0
        assert (await client.write_register(107, 170, device_id=1)).exception_code == 3  # 1 min 70 s
        assert (await client.read_holding_registers(106, count=2, device_id=1)).registers == [0, 130]
        for address, value in ((112, 2030), (113, 102), (114, 3), (115, 405)):  # 2030-01-02 03:04:05 UTC
            assert not (await client.write_register(address, value, device_id=1)).isError()
        utc = (await client.read_holding_registers(112, count=4, device_id=1)).registers
        assert utc[:3] == [2030, 102, 3] and 405 <= utc[3] <= 407


# -- AirNet II -----------------------------------------------------------------------------------
async def test_airnet_queue_shows_oldest_and_pops_on_coil_write(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", grade="D", state="at_rest", sample_time_s=FAST, seed=7) as sim:
        client = await connect(sim)
        assert (await client.read_input_registers(0, count=1, device_id=1)).registers == [100]  # map version
        await eventually(lambda: sim.state().queue_length >= 3, what="three queued packets")
        assert not (await client.write_coil(0, False, device_id=1)).isError()  # coil 1: stop collection
        queued = sim.state().queue_length

        async def packet() -> list[int]:
            return (await client.read_input_registers(211, count=33, device_id=1)).registers  # 30212..30244

        for popped in range(queued):
            regs, oldest = await packet(), sim.state().oldest_record
            assert oldest is not None
            assert regs[3] == queued - popped  # 30215 samples in queue
            assert u32_hi_first(regs, 4) == oldest.timestamp  # 30216/17 time_t
            assert u32_hi_first(regs, 6) == round(FAST * 100)  # 30218/19 sample time s x 100
            assert regs[8:10] == [0, 0x0007]  # 30220/21: low word has laser, flow, hardware good
            assert u32_hi_first(regs, 10) == 10  # 30222/23 flow CFM x 10
            assert regs[15] == 2  # 30227 channels
            assert [u32_hi_first(regs, 17), u32_hi_first(regs, 19)] == list(oldest.counts)  # 30229/30, 30231/32
            assert (await client.read_coils(1, count=1, device_id=1)).bits[0] is True  # coil 2: data available
            assert not (await client.write_coil(1, False, device_id=1)).isError()  # write 0 = pop

        assert sim.state().pops == queued and sim.state().queue_length == 0
        regs = await packet()
        assert regs[3:] == [0] * 30  # empty queue: the packet reads zero, no exception
        assert (await client.read_coils(1, count=1, device_id=1)).bits[0] is False


async def test_airnet_full_queue_drops_the_oldest(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", sample_time_s=0.05, queue_capacity=3, seed=8) as sim:
        await eventually(lambda: sim.state().drops >= 2, what="two dropped packets")
        state = sim.state()
        assert state.queue_length == 3
        assert state.oldest_record is not None and state.current_record is not None
        assert state.current_record.seq - state.oldest_record.seq == 2


async def test_airnet_clear_queue_coil(connect: ClientFactory) -> None:
    async with ParticleCounterSim(profile="airnet2", sample_time_s=FAST, seed=9) as sim:
        client = await connect(sim)
        await eventually(lambda: sim.state().queue_length >= 1, what="a queued packet")
        assert not (await client.write_coil(0, False, device_id=1)).isError()
        assert not (await client.write_coil(2, True, device_id=1)).isError()  # coil 3: clear queue
        assert sim.state().queue_length == 0
        assert (await client.read_input_registers(214, count=1, device_id=1)).registers == [0]


def test_sampled_volume_is_one_cubic_foot_per_minute() -> None:
    assert sampled_volume_m3(1.0, 60.0) == pytest.approx(0.028_316_8, rel=1e-5)
