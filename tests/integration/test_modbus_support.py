"""Helpers for the Modbus integration tests (no tests here): equipment entries for a running simulator,
a stand-in for the supervisor's loop, and the values a simulator sample must decode to.

The expected values are computed here from the simulator's Sample with the vendors' scalings written
out again, not with the simulator's register helpers, so a scaling mistake on either side shows.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from adapters.modbus import ModbusEquipmentConfig, plugin
from device_sims.particle_counter import ParticleCounterSim, Sample
from gateway.adapter import SharedResources
from gateway.errors import DeviceError
from gateway.records import ReadingBatch

MAPS = {"lighthouse": "lighthouse-remote", "metone6000": "metone-6000", "airnet2": "pms-airnet2"}
needs_socat = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
CUBIC_FEET_PER_M3 = 35.3146667
LITRES_PER_CUBIC_FOOT = 28.3168466


def equipment(
    sim: ParticleCounterSim, *, device_id: int = 1, equipment_id: str = "PC-1", **extra: Any
) -> ModbusEquipmentConfig:
    """A site-file entry for one unit of a running simulator (the map chosen by the sim's profile)."""
    entry: dict[str, Any] = {
        "id": equipment_id, "class": "particle_counter", "kind": "modbus", "transport": sim.transport,
        "device_id": device_id, "register_map": MAPS[sim.profile], "poll_interval_s": 0.05, "timeout_s": 0.5,
    }
    if sim.transport == "tcp":
        entry.update(host="127.0.0.1", port=sim.port)
    else:
        entry.update(serial_port=sim.serial_path)
    entry.update(extra)
    return ModbusEquipmentConfig.model_validate(entry)


def values(batch: ReadingBatch) -> dict[str, Any]:
    return {r.point: r.value for r in batch.readings}


def readings(batch: ReadingBatch) -> dict[str, Any]:
    return {r.point: r for r in batch.readings}


class Consumer:
    """What the supervisor does, minus the journal: run one adapter at a time, record every batch,
    acknowledge it (the commit), and build a new adapter after a DeviceError. Anything else escapes."""

    def __init__(self, eq: ModbusEquipmentConfig, resources: SharedResources, *, acknowledge: bool = True) -> None:
        self.eq = eq
        self.resources = resources
        self.acknowledge = acknowledge
        self.batches: list[ReadingBatch] = []
        self.errors: list[DeviceError] = []
        self.on_batch: Callable[[ReadingBatch], None] = lambda _b: None

    async def run_until(self, done: Callable[[Consumer], bool], *, timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not done(self):
                    try:
                        async with plugin.create(self.eq, self.resources) as adapter:
                            async for batch in adapter.batches():
                                if not (batch.readings or batch.events):
                                    continue  # "answered, nothing new": the supervisor's liveness signal
                                self.on_batch(batch)
                                self.batches.append(batch)
                                if self.acknowledge:
                                    await adapter.acknowledge(batch)
                                if done(self):
                                    return
                    except DeviceError as exc:
                        self.errors.append(exc)
                        await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what}; {len(self.batches)} batches, "
                f"errors: {[str(e) for e in self.errors[-3:]]}"
            ) from None


def expected(profile: str, s: Sample) -> dict[str, Any]:
    """The register values (before the core's scale/offset) a sample must decode to, per profile."""
    counts = dict(zip(("count_0_3um", "count_0_5um", "count_1_0um", "count_5_0um")
                      if len(s.counts) == 4 else ("count_0_5um", "count_5_0um"), s.counts, strict=True))
    if profile == "lighthouse":
        return {
            **counts, "sample_timestamp": s.timestamp, "sample_duration": round(s.sample_time_s),
            "location_number": s.location, "laser_alert": s.laser_alert, "flow_alert": s.flow_alert,
            "count_overflow": s.overflow, "temperature": s.temperature_c, "relative_humidity": s.rh_pct,
        }
    if profile == "metone6000":
        return {
            **counts, "sample_timestamp": s.timestamp, "sample_duration": round(s.sample_time_s),
            "sampled_volume": round(s.volume_m3 * 1000 * 10), "laser_alert": s.laser_alert,
            "flow_alert": s.flow_alert, "air_flow": round(s.flow_cfm * LITRES_PER_CUBIC_FOOT * 10),
            "temperature": round(s.temperature_c * 10), "relative_humidity": round(s.rh_pct * 10),
            "location_number": s.location,
        }
    return {
        **counts, "sample_timestamp": s.timestamp, "sample_duration": round(s.sample_time_s * 100),
        "air_flow": round(s.flow_cfm * 10), "sampled_volume": round(s.volume_m3 * CUBIC_FEET_PER_M3 * 10),
        "laser_alert": s.laser_alert, "flow_alert": s.flow_alert, "location_number": s.location,
        "channel_count": len(s.counts),
    }
