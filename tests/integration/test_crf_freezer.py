"""The freezer adapter against the simulated freezer on a pty, through the real supervisor, pipeline,
conformance monitor and journal: a whole classic run, LN₂ running out, an open thermocouple, a line
pulled out mid-run and a power cut."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from adapters.serial.crf import CrfEquipmentConfig, plugin
from device_sims.freezer import FreezerSim
from gateway.adapter import SharedResources
from gateway.config import SupervisorConfig
from gateway.journal import Journal, JournalReader, verify
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, ProcessRecord, Quality
from gateway.supervisor import DeviceSupervisor
from tests.waiting import eventually

FAST = SupervisorConfig(backoff_initial_s=0.05, backoff_max_s=0.2, backoff_jitter=0.0)


def equipment(sim: FreezerSim, **extra: Any) -> CrfEquipmentConfig:
    entry = {"id": "CRF-1", "class": "controlled_rate_freezer", "kind": "crf", "port": sim.serial_path,
             "approved_profiles": ["classic-cell-therapy"], "reply_timeout_s": 1.0, "silence_timeout_s": 0.5, **extra}
    return CrfEquipmentConfig.model_validate(entry)


class Gateway:
    """One supervised freezer journalling into a real journal; ``records`` are the committed ones."""

    def __init__(self, records: list[ProcessRecord], path: Path) -> None:
        self.records = records
        self.path = path

    def of(self, parameter: str) -> list[ProcessRecord]:
        return [r for r in self.records if r.parameter == parameter]

    def event(self, value: str) -> list[ProcessRecord]:
        return [r for r in self.records if r.kind is Kind.EVENT and r.value == value]

    async def until(self, check: Callable[[Gateway], object], what: str, timeout_s: float = 15.0) -> None:
        await eventually(lambda: check(self), timeout_s=timeout_s, what=what)


@contextlib.asynccontextmanager
async def supervised(sim: FreezerSim, tmp_path: Path) -> AsyncIterator[Gateway]:
    eq = equipment(sim)
    device_map = plugin.device_map(eq)
    pipeline = EquipmentPipeline(eq, device_map, "c" * 64, monitors=plugin.monitors(eq, device_map))
    records: list[ProcessRecord] = []
    path = tmp_path / "journal.sqlite"
    async with Journal.open(path, gateway_id="gw-crf") as journal:
        sup = DeviceSupervisor(eq, lambda: plugin.create(eq, SharedResources()), pipeline, journal.append, FAST,
                               on_records=records.extend, rng=random.Random(1))
        task = asyncio.create_task(sup.run())
        try:
            yield Gateway(records, path)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    verify(path).raise_for_status()


def alarms(gw: Gateway) -> list[tuple[str, Any]]:
    return [(r.parameter, r.value) for r in gw.records if r.kind is Kind.ALARM and not r.parameter.startswith("alarm_")]


async def test_a_whole_classic_run_gives_its_run_record_and_no_deviation(tmp_path: Path) -> None:
    async with FreezerSim(time_scale=1500, sample_interval_s=15, seed=3) as sim:
        async with supervised(sim, tmp_path) as gw:
            await gw.until(lambda g: g.of("device_serial"), "the connect handshake")
            run_id = sim.start_run("LOT-CRF-1")
            await gw.until(lambda g: g.event("run_ended") and g.event("conforming"), "the run's end", timeout_s=30)
        (run,) = sim.state().runs
    assert (run.run_id, run.outcome) == (run_id, "COMPLETE")
    assert alarms(gw) == [("profile_approval", "normal")], "an approved profile followed within its bands"
    (started,) = gw.event("run_started")
    assert started.detail == f"run {run_id} profile classic-cell-therapy checksum 11743B3C lot LOT-CRF-1"
    assert started.lot_id == "LOT-CRF-1" and started.process_step == run_id
    states = [r.value for r in gw.of("run_state")]
    assert states[-2:] == ["running", "complete"]
    (samples,) = gw.of("run_samples")
    (received,) = gw.of("run_samples_received")
    assert samples.value == received.value == run.samples > 200 and received.quality is Quality.GOOD
    assert gw.of("profile_checksum")[-1].value == "11743B3C"
    chamber = [r for r in gw.of("chamber_temperature") if r.lot_id == "LOT-CRF-1"]
    assert len(chamber) == run.samples
    assert {r.process_step for r in chamber} == {f"{run_id}/{n}" for n in range(1, 8)}
    assert all(r.quality is Quality.GOOD and r.unit == "Cel" and r.source_time for r in chamber)
    assert min(r.value for r in chamber) < -85  # type: ignore[type-var]
    (conforming,) = gw.event("conforming")
    assert conforming.parameter == "profile_conformance" and conforming.lot_id == "LOT-CRF-1"
    with JournalReader(gw.path) as reader:
        rows = list(reader.read_raw(equipment_id="CRF-1"))
    raw = next(raw for rec, raw in rows if rec.parameter == "chamber_temperature")
    assert raw is not None and raw.startswith(b"$S,") and b"*" in raw, "the line as received is journalled"


async def test_ln2_running_out_is_a_deviation_naming_the_step(tmp_path: Path) -> None:
    async with FreezerSim(time_scale=1000, sample_interval_s=10, seed=4, run_on_start={"lot": "LOT-CRF-2"}) as sim:
        async with supervised(sim, tmp_path) as gw:
            await gw.until(lambda g: any(r.value == 5 for r in g.of("profile_step")), "step 5", timeout_s=20)
            sim.inject("ln2_empty")
            await gw.until(lambda g: any(r.value == "deviation" for r in g.of("chamber_profile_deviation")),
                           "a deviation alarm")
    (alarm,) = [r for r in gw.of("chamber_profile_deviation") if r.value == "deviation"]
    assert alarm.kind is Kind.ALARM and alarm.lot_id == "LOT-CRF-2" and alarm.process_step == "R0001/5"
    assert "step 5 (cool -1 Cel/min to -40 Cel): chamber" in (alarm.detail or "")
    assert "above the approved" in (alarm.detail or "")
    (magnitude,) = gw.of("chamber_profile_deviation_c")
    assert magnitude.value > 3.0 and magnitude.source_time == alarm.source_time  # type: ignore[operator]
    assert [r.value for r in gw.of("alarm_ln2_supply")][-1] is True
    normal = next(r.value for r in gw.of("ln2_valve_demand") if r.process_step == "R0001/5")
    assert gw.of("ln2_valve_demand")[-1].value > 2 * normal, "the controller asks for LN2 that does not come"  # type: ignore[operator]


async def test_an_open_thermocouple_gives_bad_sample_records(tmp_path: Path) -> None:
    async with FreezerSim(time_scale=200, sample_interval_s=5, seed=5, run_on_start={"lot": "LOT-CRF-3"}) as sim:
        async with supervised(sim, tmp_path) as gw:
            await gw.until(lambda g: g.of("sample_temperature"), "a sample record")
            sim.inject("thermocouple_open", probe=1)
            await gw.until(lambda g: len([r for r in g.of("sample_temperature") if r.value is None]) >= 3,
                           "bad sample records")
    bad = [r for r in gw.of("sample_temperature") if r.value is None]
    assert all(r.quality is Quality.BAD_SENSOR_FAILURE and r.lot_id == "LOT-CRF-3" for r in bad)
    assert "thermocouple open circuit" in (bad[0].detail or "")
    assert [r.value for r in gw.of("alarm_sample_probe")] == [False, True]
    assert all(r.quality is Quality.GOOD for r in gw.of("chamber_temperature")), "the other probe reads on"


async def test_a_line_drop_mid_run_is_a_gap_and_the_adapter_recovers(tmp_path: Path) -> None:
    async with FreezerSim(time_scale=100, sample_interval_s=5, seed=6, run_on_start={"lot": "LOT-CRF-4"}) as sim:
        async with supervised(sim, tmp_path) as gw:
            await gw.until(lambda g: len(g.of("chamber_temperature")) >= 3, "samples")
            sim.inject("disconnect")
            await gw.until(lambda g: g.event("lost"), "the communication lost event")
            mark = len(gw.records)
            await sim.restore()
            await gw.until(lambda g: g.event("restored"), "the communication restored event")
            await gw.until(lambda g: len([r for r in g.records[mark:] if r.parameter == "chamber_temperature"]) >= 3,
                           "samples again")
    (lost,) = gw.event("lost")
    assert lost.parameter == "communication" and lost.quality is Quality.BAD_COMMUNICATION_ERROR
    assert "CRF-1" in (lost.detail or "") and "serial line" in (lost.detail or "")
    gap = [r for r in gw.records if r.parameter == "chamber_temperature" and r.value is None]
    assert gap and gap[0].quality is Quality.BAD_COMMUNICATION_ERROR
    assert [e.value for e in gw.records if e.value in ("run_started", "run_in_progress")] == ["run_in_progress"] * 2
    after = [r for r in gw.records[mark:] if r.parameter == "chamber_temperature" and r.value is not None]
    assert after and all(r.lot_id == "LOT-CRF-4" and r.quality is Quality.GOOD for r in after)


async def test_a_power_cut_is_a_silence_then_the_run_resumes_with_its_alarm(tmp_path: Path) -> None:
    async with FreezerSim(time_scale=100, sample_interval_s=5, seed=7, run_on_start={"lot": "LOT-CRF-5"}) as sim:
        async with supervised(sim, tmp_path) as gw:
            await gw.until(lambda g: len(g.of("chamber_temperature")) >= 3, "samples")
            sim.inject("power_loss", duration_s=120)  # 1.2 s of real time: longer than the 0.5 s silence allowed
            await gw.until(lambda g: g.event("restored"), "the freezer answering again")
            await gw.until(lambda g: any(r.value is True for r in g.of("alarm_power_fail")), "the latched alarm")
    (lost,) = gw.event("lost")
    assert "no line from the freezer for 0.5 s" in (lost.detail or "")
    (latched,) = [r for r in gw.of("alarm_power_fail") if r.value is True]
    assert latched.process_step is not None and latched.process_step.startswith("R0001/")
    assert sim.state().run_id == "R0001", "a two-minute outage resumes the run"
    # The freezer announces its return once; the gateway hears it unless it was reopening the line just then
    # (opening a serial port discards what waits in it). The latched alarm bit is the fact that always arrives.
    assert all("run R0001 resumed" in (e.detail or "") for e in gw.event("power_restored"))
