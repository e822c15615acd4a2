"""The Modbus adapter against the particle-counter simulator: every profile over TCP and over RTU
decodes to what the simulator holds, and the core turns it into concentrations."""

from __future__ import annotations

import pytest
from test_modbus_support import Consumer, equipment, expected, needs_socat, readings, values

from adapters.modbus import plugin
from device_sims.particle_counter import ParticleCounterSim
from gateway.adapter import SharedResources
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, Quality, ReadingBatch, utc_from_timestamp

PROFILES = ["lighthouse", "metone6000", "airnet2"]
TRANSPORTS = ["tcp", pytest.param("rtu", marks=needs_socat)]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("profile", PROFILES)
async def test_each_profile_decodes_as_the_simulator_holds_it(profile: str, transport: str) -> None:
    async with ParticleCounterSim(profile=profile, transport=transport, grade="D", state="at_rest",
                                  sample_time_s=1.0, seed=7) as sim, SharedResources() as res:
        eq = equipment(sim)
        consumer = Consumer(eq, res)
        matched: list[ReadingBatch] = []

        def compare(batch: ReadingBatch) -> None:
            state = sim.state()
            # AirNet shows the oldest queued packet (not yet popped); the others show the newest sample.
            record = state.oldest_record if profile == "airnet2" else state.current_record
            got = values(batch)
            if record is None or record.timestamp != got["sample_timestamp"]:
                return  # a newer sample landed between the read and this look: not comparable
            want = expected(profile, record)
            assert {k: got[k] for k in want} == want
            matched.append(batch)

        consumer.on_batch = compare
        await consumer.run_until(lambda c: len(matched) >= 2, timeout_s=15, what="two comparable samples")
        assert consumer.errors == []
        assert any(v > 0 for b in matched for k, v in values(b).items() if k.startswith("count_"))  # grade D counts

        batch = matched[-1]
        by = readings(batch)
        endpoint = f"modbus+tcp://127.0.0.1:{sim.port}" if transport == "tcp" else f"modbus+rtu://{sim.serial_path}"
        rmap = plugin.device_map(eq)
        for name, reading in by.items():
            point = rmap.points[name]
            assert reading.source == f"{endpoint}/1/{point.table}/{point.address}"
            assert reading.quality is Quality.GOOD, (name, reading.detail)
            assert reading.equipment_id == "PC-1"
            assert reading.raw is not None and len(reading.raw) == (1 if point.table == "coil" else 2 * point.span)
        assert by["count_0_5um"].source_time == utc_from_timestamp(values(batch)["sample_timestamp"])
        assert len({r.gateway_time for r in batch.readings}) == 1  # one gateway time per read


async def test_the_core_turns_a_lighthouse_record_into_concentrations() -> None:
    async with ParticleCounterSim(profile="lighthouse", grade="D", state="at_rest", sample_time_s=1.0,
                                  seed=8) as sim, SharedResources() as res:
        eq = equipment(sim)
        consumer = Consumer(eq, res)
        await consumer.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="a record")
        pipeline = EquipmentPipeline(eq, plugin.device_map(eq), "0" * 64)
        drafts = {d.parameter: d for d, _raw in pipeline.process(consumer.batches[0])}
        got = values(consumer.batches[0])
        volume_m3 = got["air_flow"] * 0.01 * 0.028316846592 * got["sample_duration"] / 60
        conc = drafts["particle_concentration_0_5um"]
        assert conc.unit == "/m3" and conc.quality is Quality.GOOD
        assert conc.value == pytest.approx(got["count_0_5um"] / volume_m3)
        assert drafts["air_flow"].value == pytest.approx(1.0) and drafts["air_flow"].unit == "[ft_i]3/min"
        assert drafts["device_state"].kind is Kind.STATE and drafts["device_state"].value == "sampling"
        assert "record_count" not in drafts  # internal points feed the core but are not journalled


async def test_read_once_shows_the_current_sample_without_consuming_it() -> None:
    async with ParticleCounterSim(profile="airnet2", sample_time_s=0.2, seed=9) as sim, SharedResources() as res:
        eq = equipment(sim)
        consumer = Consumer(eq, res, acknowledge=False)
        await consumer.run_until(lambda c: len(c.batches) >= 1, timeout_s=10, what="a packet")
        async with plugin.create(eq, res) as adapter:
            look = await adapter.read_once()
        assert look is not None
        assert values(look)["sample_timestamp"] == sim.state().oldest_record.timestamp  # type: ignore[union-attr]
        assert sim.state().pops == 0
