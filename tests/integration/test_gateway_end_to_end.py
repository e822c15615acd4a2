"""The whole record path against real simulators: sims → Modbus → normalise → limits → journal.

Each test runs the real gateway (``run_gateway``) on a site file in tmp_path, the simulators started
by the test on port 0, and reads back what the journal holds.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from device_sims.particle_counter import ParticleCounterSim
from gateway.config import load_site
from gateway.journal import JournalReader, verify
from gateway.plugins import adapter_plugins
from gateway.records import Kind, ProcessRecord, Quality
from gateway.runtime import run_gateway

needs_socat = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (make test installs it)")


def site_file(tmp_path: Path, equipment: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "gateway: {id: gw-test}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2}\n"
        "equipment:\n" + equipment
    )
    return path


def tcp_counter(eq_id: str, sim: ParticleCounterSim, register_map: str, limits: str = "") -> str:
    text = (
        f"  - {{id: {eq_id}, class: particle_counter, kind: modbus, transport: tcp, host: 127.0.0.1,\n"
        f"     port: {sim.port}, device_id: 1, register_map: {register_map}, poll_interval_s: 0.1, timeout_s: 0.3"
    )
    return text + (f",\n     particle_limits: {limits}}}\n" if limits else "}\n")


async def run_until(path: Path, condition: Callable[[list[ProcessRecord]], bool], *, timeout_s: float = 20.0,
                    during: Callable[[list[ProcessRecord]], None] | None = None) -> list[ProcessRecord]:
    """Run the gateway until the committed records satisfy ``condition`` (bounded), then stop it."""
    loaded = load_site(path, adapter_plugins())
    committed: list[ProcessRecord] = []
    stop = asyncio.Event()
    changed = asyncio.Event()

    def on_records(records: object) -> None:
        committed.extend(records)  # type: ignore[arg-type]
        changed.set()

    runner = asyncio.create_task(run_gateway(loaded, stop=stop, on_records=on_records))
    try:
        async with asyncio.timeout(timeout_s):
            while not condition(committed):
                changed.clear()
                await changed.wait()
                if during is not None:
                    during(committed)
    finally:
        stop.set()
        await runner
    return committed


def of(records: list[ProcessRecord], eq: str, parameter: str | None = None, kind: Kind | None = None) -> list:
    return [r for r in records if r.equipment_id == eq and (parameter is None or r.parameter == parameter)
            and (kind is None or r.kind is kind)]


async def test_records_are_normalised_committed_and_verifiable(tmp_path: Path) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=1.0, seed=3) as sim:
        path = site_file(tmp_path, tcp_counter("PC-1", sim, "lighthouse-remote"))
        records = await run_until(path, lambda rs: len(of(rs, "PC-1", "particle_concentration_0_5um")) >= 2)
        expected = sim.state().current_record
    conc = of(records, "PC-1", "particle_concentration_0_5um")
    assert all(r.unit == "/m3" and r.quality is Quality.GOOD and r.source_time is not None for r in conc)
    counts = of(records, "PC-1", "particle_count_0_5um")
    assert counts[-1].value == expected.counts[1] or counts[-2].value == expected.counts[1]
    assert counts[-1].source.startswith(f"modbus+tcp://127.0.0.1:{sim.port}/1/input/")
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    report = verify(tmp_path / "journal.sqlite")
    assert report.ok and report.last_seq == records[-1].seq
    with JournalReader(tmp_path / "journal.sqlite") as reader:
        stored = list(reader.read())
    assert stored == records  # what was reported committed is exactly what the journal holds


async def test_annex1_excursion_raises_and_clears_an_action_alarm(tmp_path: Path) -> None:
    async with ParticleCounterSim(profile="lighthouse", sample_time_s=1.0, seed=5, grade="A") as sim:
        path = site_file(tmp_path, tcp_counter("PC-ISO", sim, "lighthouse-remote",
                                               "{grade: A, state: in_operation}"))
        injected = False

        def inject_once(rs: list[ProcessRecord]) -> None:
            nonlocal injected
            if not injected and of(rs, "PC-ISO", "particle_concentration_0_5um"):
                sim.inject("excursion", samples=1, factor=50)
                injected = True

        records = await run_until(
            path,
            lambda rs: [a.value for a in of(rs, "PC-ISO", "particle_concentration_0_5um", Kind.ALARM)][-1:]
            == ["normal"],
            during=inject_once,
        )
    alarms = of(records, "PC-ISO", "particle_concentration_0_5um", Kind.ALARM)
    assert [a.value for a in alarms] == ["action_limit_exceeded", "normal"]
    exceeded = alarms[0]
    conc = next(r for r in of(records, "PC-ISO", "particle_concentration_0_5um", Kind.MEASUREMENT)
                if r.source_time == exceeded.source_time)
    assert conc.value > 3520 and exceeded.source_time is not None  # stamped with the device's sample time
    assert "action limit 3 520 /m3" in exceeded.detail


@needs_socat
async def test_a_lost_device_is_journalled_as_a_gap_while_another_keeps_flowing(tmp_path: Path) -> None:
    async with (
        ParticleCounterSim(profile="airnet2", sample_time_s=1.0, seed=1) as flaky,
        ParticleCounterSim(profile="metone6000", transport="rtu", sample_time_s=1.0, seed=2) as steady,
    ):
        equipment = tcp_counter("PC-FLAKY", flaky, "pms-airnet2") + (
            "  - {id: PC-STEADY, class: particle_counter, kind: modbus, transport: rtu,\n"
            f"     serial_port: {steady.serial_path}, device_id: 1, register_map: metone-6000, poll_interval_s: 0.1}}\n"
        )
        path = site_file(tmp_path, equipment)
        phase = "flowing"
        steady_at_loss = 0

        def drive(rs: list[ProcessRecord]) -> None:
            nonlocal phase, steady_at_loss
            if phase == "flowing" and of(rs, "PC-FLAKY", "particle_count_0_5um"):
                flaky.inject("disconnect")
                phase = "down"
            elif phase == "down" and of(rs, "PC-FLAKY", "communication"):
                steady_at_loss = len(of(rs, "PC-STEADY", "particle_count_0_5um"))
                phase = "waiting"
            elif phase == "waiting" and len(of(rs, "PC-STEADY", "particle_count_0_5um")) >= steady_at_loss + 2:
                asyncio.get_running_loop().create_task(flaky.restore())
                phase = "restoring"

        records = await run_until(
            path, lambda rs: [e.value for e in of(rs, "PC-FLAKY", "communication")] == ["lost", "restored"],
            during=drive,
        )
    lost = of(records, "PC-FLAKY", "communication")[0]
    assert lost.quality is Quality.BAD_COMMUNICATION_ERROR and "PC-FLAKY" in lost.detail
    gap = [r for r in records if r.equipment_id == "PC-FLAKY" and r.seq > lost.seq and r.value is None]
    assert {r.parameter for r in gap} >= {"particle_count_0_5um", "particle_concentration_0_5um"}
    assert all(r.quality is Quality.BAD_COMMUNICATION_ERROR for r in gap)
    assert next(r for r in gap if r.parameter == "laser_alert").kind is Kind.STATE  # a gap keeps each kind
    # the other device kept delivering good samples while the first was down
    restored = of(records, "PC-FLAKY", "communication")[1]
    during_outage = [r for r in of(records, "PC-STEADY", "particle_count_0_5um") if lost.seq < r.seq < restored.seq]
    assert len(during_outage) >= 2 and all(r.quality is Quality.GOOD for r in during_outage)
    assert verify(tmp_path / "journal.sqlite").ok
