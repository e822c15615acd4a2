"""The Modbus adapter when things go wrong: outages, restarts, a queue not yet committed, a silent or
babbling device, a dead unit on a shared RS-485 line. Nothing is lost, nothing is invented, and only
gateway errors leave the adapter."""

from __future__ import annotations

import asyncio

import pytest
from test_modbus_support import Consumer, equipment, needs_socat, readings, values

from adapters.modbus import plugin
from device_sims.particle_counter import ParticleCounterSim
from gateway.adapter import SharedResources
from gateway.errors import CommunicationError, DeviceError, DeviceReportedError, DeviceTimeout, ProtocolError
from gateway.records import Quality


async def test_lighthouse_reads_back_the_records_missed_during_a_disconnect() -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=0.25, seed=30) as sim, \
            SharedResources() as res:
        consumer = Consumer(equipment(sim), res)
        await consumer.run_until(lambda c: len(c.batches) >= 2, timeout_s=10, what="records before the outage")
        first_count = values(consumer.batches[0])["record_count"]

        sim.inject("disconnect")
        produced = sim.state().samples_produced
        await consumer.run_until(lambda c: len(c.errors) >= 1, timeout_s=10, what="the outage to be seen")
        await consumer.run_until(  # the device keeps sampling while nobody can read it
            lambda c: sim.state().samples_produced >= produced + 6, timeout_s=10, what="records during the outage")
        assert all(isinstance(e, CommunicationError) for e in consumer.errors)
        await sim.restore()

        target = sim.state().samples_produced
        await consumer.run_until(lambda c: values(c.batches[-1])["record_count"] >= target and
                                 len(c.batches) >= target - first_count + 1,
                                 timeout_s=15, what="the missed records")
        stamps = [values(b)["sample_timestamp"] for b in consumer.batches]
        last_count = values(consumer.batches[-1])["record_count"]
        assert len(stamps) == last_count - first_count + 1  # every record since first contact, once
        assert stamps == sorted(stamps)  # oldest first, through the outage
        assert max(len(b.events) for b in consumer.batches) == 0


async def test_a_device_restart_is_an_event_and_the_new_records_follow() -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=0.25, seed=31) as sim, \
            SharedResources() as res:
        consumer = Consumer(equipment(sim), res)
        await consumer.run_until(lambda c: values(c.batches[-1])["record_count"] >= 4 if c.batches else False,
                                 timeout_s=10, what="a few records")
        before = values(consumer.batches[-1])["record_count"]
        sim.inject("restart")
        await consumer.run_until(lambda c: any(b.events for b in c.batches), timeout_s=10, what="the restart event")
        (event_batch,) = [b for b in consumer.batches if b.events]
        ((name, detail),) = event_batch.events
        assert name == "device_restart"
        assert detail.startswith(f"record count went from {before} to ")
        n = len(consumer.batches)
        await consumer.run_until(lambda c: len(c.batches) >= n + 2, timeout_s=10, what="records after the restart")
        assert all(b.readings for b in consumer.batches[n:])


async def test_airnet_pops_a_packet_only_when_it_is_acknowledged() -> None:
    async with ParticleCounterSim(profile="airnet2", sample_time_s=0.2, seed=32) as sim, SharedResources() as res:
        eq = equipment(sim, poll_interval_s=0.02)
        unacked = Consumer(eq, res, acknowledge=False)
        await unacked.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="a packet")
        head = values(unacked.batches[0])["sample_timestamp"]
        assert sim.state().pops == 0

        # Reconnect (the core crashed before its commit): the same packet is read again.
        again = Consumer(eq, res, acknowledge=False)
        await again.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="the packet again")
        assert values(again.batches[0])["sample_timestamp"] == head
        assert sim.state().pops == 0

        async with plugin.create(eq, res) as adapter:
            queued = sim.state().queue_length
            gen = adapter.batches()
            batch = await anext(gen)
            assert values(batch)["sample_timestamp"] == head and sim.state().pops == 0
            await adapter.acknowledge(batch)  # the commit is durable: now pop
            assert sim.state().pops == 1
            assert sim.state().queue_length <= queued  # shrank by one, unless a new sample arrived meanwhile
            nxt = await anext(gen)
            while not nxt.readings:  # "answered, nothing new" until the next packet is queued
                nxt = await anext(gen)
            assert values(nxt)["sample_timestamp"] >= head
            await gen.aclose()


async def test_illegal_address_is_a_device_reported_error_naming_where() -> None:
    async with ParticleCounterSim(profile="metone6000", sample_time_s=0.2, seed=33) as sim, \
            SharedResources() as res:
        sim.inject("illegal_address")
        with pytest.raises(DeviceReportedError) as err:
            async with plugin.create(equipment(sim), res) as adapter:
                async for _ in adapter.batches():
                    pass
        assert err.value.code == 2
        assert err.value.equipment_id == "PC-1"
        assert err.value.address.startswith(f"modbus+tcp://127.0.0.1:{sim.port}/1/holding/")
        assert "illegal data address" in str(err.value) and str(err.value).startswith("PC-1 modbus+tcp://")


async def test_a_stalled_device_is_a_timeout_within_its_timeout() -> None:
    """The link stays up and the counter says nothing: Bad_Timeout, not a lost link."""
    async with ParticleCounterSim(profile="metone6000", sample_time_s=0.2, seed=34) as sim, \
            SharedResources() as res:
        eq = equipment(sim, timeout_s=0.3, retries=1)
        async with plugin.create(eq, res) as adapter:
            gen = adapter.batches()
            await anext(gen)
            sim.inject("stall")
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(DeviceTimeout) as err:
                await anext(gen)
            assert loop.time() - started < 0.3 * 2 + 1.0
            assert err.value.quality == "Bad_Timeout" and "no answer in time" in str(err.value)
            await gen.aclose()
        await sim.restore()
        consumer = Consumer(eq, res)  # the link comes back without a restart of anything
        await consumer.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="reading after the stall")


@pytest.mark.parametrize("transport", ["tcp", pytest.param("rtu", marks=needs_socat)])
async def test_garbage_on_the_wire_is_a_gateway_error_never_a_crash(transport: str) -> None:
    async with ParticleCounterSim(profile="lighthouse", transport=transport, sample_time_s=0.2, seed=35) as sim, \
            SharedResources() as res:
        eq = equipment(sim, timeout_s=0.3)
        consumer = Consumer(eq, res)
        await consumer.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="a record")
        sim.inject("garbage")
        await consumer.run_until(lambda c: len(c.errors) >= 3, timeout_s=15, what="garbage to be refused")
        assert all(isinstance(e, ProtocolError | CommunicationError) for e in consumer.errors)
        n = len(consumer.batches)
        await sim.restore()
        await consumer.run_until(lambda c: len(c.batches) > n, timeout_s=15, what="reading after the garbage")


@needs_socat
async def test_a_dead_unit_on_a_shared_line_does_not_stop_the_other() -> None:
    async with ParticleCounterSim(profile="lighthouse", transport="rtu", unit_ids=[1, 2], sample_time_s=0.25,
                                  seed=36) as sim, SharedResources() as res:
        live = Consumer(equipment(sim, device_id=1, equipment_id="PC-1"), res)
        dead = Consumer(equipment(sim, device_id=3, equipment_id="PC-3"), res)  # nobody answers to unit 3
        stop = asyncio.Event()

        async def until_stopped(c: Consumer, what: str) -> None:
            await c.run_until(lambda _c: stop.is_set(), timeout_s=20, what=what)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(until_stopped(live, "unit 1"))
            tg.create_task(until_stopped(dead, "unit 3"))
            deadline = asyncio.get_running_loop().time() + 15
            while not (len(dead.errors) >= 3 and len(live.batches) >= 4):
                assert asyncio.get_running_loop().time() < deadline, (len(dead.errors), len(live.batches))
                await asyncio.sleep(0.02)
            stop.set()
        assert all(isinstance(e, CommunicationError) for e in dead.errors)
        assert all("PC-3" in str(e) and "/3/" in e.address for e in dead.errors)
        assert live.errors == []  # one shared line, one bus object: unit 1 never noticed
        assert dead.batches == []


async def test_flow_and_laser_alerts_lower_the_quality_of_the_counts() -> None:
    async with ParticleCounterSim(profile="airnet2", sample_time_s=0.2, seed=37) as sim, SharedResources() as res:
        consumer = Consumer(equipment(sim), res)
        sim.inject("laser_alert")
        await consumer.run_until(lambda c: any(values(b)["laser_alert"] for b in c.batches), timeout_s=10,
                                 what="a packet with the laser alert")
        batch = next(b for b in consumer.batches if values(b)["laser_alert"])
        by = readings(batch)
        assert by["count_0_5um"].quality is Quality.BAD_SENSOR_FAILURE  # active-good bit cleared
        assert "laser not good" in (by["count_0_5um"].detail or "")
        assert by["device_state"].value == 3  # the device says error; the core names it
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=0.2, seed=38) as sim, SharedResources() as res:
        consumer = Consumer(equipment(sim), res)
        sim.inject("flow_alert")
        await consumer.run_until(lambda c: any(values(b)["flow_alert"] for b in c.batches), timeout_s=10,
                                 what="a record with the flow alert")
        by = readings(next(b for b in consumer.batches if values(b)["flow_alert"]))
        assert by["count_0_5um"].quality is Quality.UNCERTAIN_SENSOR_NOT_ACCURATE
        assert by["air_flow"].quality is Quality.UNCERTAIN_SENSOR_NOT_ACCURATE
        assert by["air_flow"].value == 85  # 0.85 CFM x 100, as the device reports it


async def test_a_counter_set_to_concentrations_is_not_read_as_counts() -> None:
    async with ParticleCounterSim(profile="metone6000", sample_time_s=0.2, seed=39) as sim, SharedResources() as res:
        eq = equipment(sim)
        consumer = Consumer(eq, res)
        await consumer.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="a sample")
        assert readings(consumer.batches[-1])["count_0_5um"].quality is Quality.GOOD
        async with plugin.create(eq, res) as adapter:  # someone sets the counter to report per m3
            await adapter.bus.write_register(143, 3, device_id=1, equipment_id="test")
        n = len(consumer.batches)
        await consumer.run_until(lambda c: len(c.batches) > n, timeout_s=10, what="a sample after the change")
        count = readings(consumer.batches[-1])["count_0_5um"]
        assert count.quality is Quality.BAD_CONFIGURATION_ERROR
        assert "concentration_mode reads 3, the map assumes 0" in (count.detail or "")


async def test_only_gateway_errors_leave_the_adapter_when_nothing_listens() -> None:
    async with ParticleCounterSim(profile="airnet2", seed=40) as sim:
        port = sim.port
    eq = equipment(sim)
    assert eq.port == port
    async with SharedResources() as res:
        with pytest.raises(CommunicationError, match="cannot open the link"):
            async with plugin.create(eq, res):
                pass
        with pytest.raises(DeviceError):
            async with plugin.create(eq, res):
                pass


async def test_an_absent_unit_behind_a_tcp_endpoint_is_a_communication_error() -> None:
    async with ParticleCounterSim(profile="metone6000", seed=41) as sim, SharedResources() as res:
        with pytest.raises(CommunicationError, match=r"exception 11 \(gateway target") as err:
            async with plugin.create(equipment(sim, device_id=5, equipment_id="PC-5"), res) as adapter:
                await adapter.read_once()
        assert err.value.equipment_id == "PC-5" and "/5/holding/" in err.value.address
