"""Helpers for the VISA integration tests (no tests here): site files for running DAQ simulators and a
bounded run of the real gateway (adapter, supervisor, pipeline, monitors, journal)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from device_sims.scpi_daq import ScpiDaqSim
from gateway.config import load_site
from gateway.plugins import adapter_plugins
from gateway.records import Kind, ProcessRecord
from gateway.runtime import run_gateway

IDENTITY = "{manufacturer: CGT Simulated Instruments, model: DAQ-4TC, serial: SIM000001}"


def site_file(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "gateway: {id: gw-visa}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2, backoff_jitter: 0}\n"
        "equipment:\n" + "".join(entries)
    )
    return path


def daq(eq_id: str, sim: ScpiDaqSim, *, instrument_map: str = "scpi-temperature-daq", poll_interval_s: float = 0.1,
        timeout_s: float = 0.5, identity: str = IDENTITY, extra: str = "") -> str:
    """One ``kind: visa`` entry reading ``sim`` through its VISA resource string."""
    return (
        f"  - id: {eq_id}\n    class: cryo_storage\n    kind: visa\n    resource: '{sim.resource}'\n"
        f"    instrument_map: {instrument_map}\n    identity: {identity}\n"
        f"    poll_interval_s: {poll_interval_s}\n    timeout_s: {timeout_s}\n" + extra
    )


async def run_until(path: Path, condition: Callable[[list[ProcessRecord]], bool], *, timeout_s: float = 20.0,
                    during: Callable[[list[ProcessRecord]], None] | None = None) -> list[ProcessRecord]:
    """Run the gateway until the committed records satisfy ``condition`` (bounded), then stop it."""
    loaded = load_site(path, adapter_plugins())
    committed: list[ProcessRecord] = []
    stop, changed = asyncio.Event(), asyncio.Event()

    def on_records(records: object) -> None:
        committed.extend(records)  # type: ignore[arg-type]
        changed.set()

    runner = asyncio.create_task(run_gateway(loaded, stop=stop, on_records=on_records, drain_grace_s=0))
    try:
        async with asyncio.timeout(timeout_s):
            while not condition(committed):  # also re-checked while nothing is committed (a refused device)
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 0.05)
                if during is not None:
                    during(committed)
    finally:
        stop.set()
        await runner
    return committed


def of(records: list[ProcessRecord], eq: str, parameter: str | None = None, kind: Kind | None = None,
       value: object = ...) -> list[ProcessRecord]:
    return [r for r in records if r.equipment_id == eq and (parameter is None or r.parameter == parameter)
            and (kind is None or r.kind is kind) and (value is ... or r.value == value)]
