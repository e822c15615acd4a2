"""The closed processor's clock set ahead and back at run time, through the real gateway (OPC UA adapter,
supervisor, pipeline, clock-drift monitor, journal): both times kept, the offset on the records, one
drift alarm and one return to normal, and nothing reordered or repeated when the clock jumps back."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from device_sims.closed_processor import ClosedProcessorSim
from gateway.journal import verify
from gateway.records import Kind, ProcessRecord, utc_now
from tests.integration.test_opcua_support import quiet_asyncua
from tests.integration.test_visa_support import of, run_until

SKEW_S = 300.0


def site(tmp_path: Path, sim: ClosedProcessorSim) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "gateway: {id: gw-clock}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2, backoff_jitter: 0}\n"
        "clock: {max_offset_s: 60}\n"
        "equipment:\n"
        f"  - {{id: CP-1, class: cell_processor, kind: opcua, endpoint: '{sim.endpoint}',\n"
        "     node_map: lads-closed-processor, publishing_interval_ms: 50, poll_interval_s: 0.2}\n"
    )
    return path


class ClockJumps:
    """Set the device clock 5 min ahead once the offset is known, and back once the alarm is raised and a
    few temperatures have come in 5 min ahead. Keeps when it jumped (the gateway's clock)."""

    def __init__(self, sim: ClosedProcessorSim) -> None:
        self.sim = sim
        self.phase = "in step"
        self.jumps: list[datetime] = []

    def __call__(self, records: list[ProcessRecord]) -> None:
        if self.phase == "in step" and len([r for r in records if r.clock_offset_s is not None]) >= 10:
            self.sim.inject("clock_skew", seconds=SKEW_S)
            self.jumps.append(utc_now())
            self.phase = "ahead"
        elif (self.phase == "ahead" and of(records, "CP-1", "clock_drift", value="ahead")
              and len([r for r in of(records, "CP-1", "temperature") if (r.clock_offset_s or 0) > SKEW_S / 2]) >= 3):
            self.sim.clear("clock_skew")  # the device clock jumps back 5 min
            self.jumps.append(utc_now())
            self.phase = "back"

    def near_a_jump(self, record: ProcessRecord) -> bool:
        """Received within half a second of a jump: its read may hold samples from both sides of it."""
        return any(timedelta(0) <= record.gateway_time - at <= timedelta(seconds=0.5) for at in self.jumps)


def done(records: list[ProcessRecord]) -> bool:
    normal = of(records, "CP-1", "clock_drift", value="normal")
    return bool(normal) and len([r for r in records if r.seq > normal[0].seq and r.kind is Kind.MEASUREMENT]) >= 10


@pytest.mark.asyncio
async def test_a_device_clock_set_ahead_and_back_is_one_alarm_and_nothing_reordered(tmp_path: Path) -> None:
    quiet_asyncua()
    async with ClosedProcessorSim(profile="lads", seed=4, time_scale=600, update_interval_s=0.05) as sim:
        jumps = ClockJumps(sim)
        records = await run_until(site(tmp_path, sim), done, during=jumps, timeout_s=30)
    assert verify(tmp_path / "journal.sqlite").ok

    ahead, normal = of(records, "CP-1", "clock_drift")
    assert (ahead.kind, ahead.value, normal.value) == (Kind.ALARM, "ahead", "normal")
    assert re.fullmatch(r"device clock (29\d|300)\.\d s ahead of the gateway, above the 60 s limit", ahead.detail or "")
    assert re.match(r"device clock \d\.\d s (ahead of|behind) the gateway, back within the 60 s limit; it was up to 30",
                    normal.detail or "")
    assert ahead.clock_offset_s == pytest.approx(SKEW_S, abs=2.0)

    temperature = of(records, "CP-1", "temperature")
    assert temperature[0].clock_offset_s is None, "the first value of a session is not a comparison"
    temperature = temperature[1:]
    for r in temperature:
        assert r.source_time is not None and r.server_time is not None and r.clock_offset_s is not None
        # the offset on each record is what its two times say, within the delivery delay (a read holding
        # samples from both sides of a jump carries the offset of its least delayed one)
        if not jumps.near_a_jump(r):
            assert (r.source_time - r.gateway_time).total_seconds() == pytest.approx(r.clock_offset_s, abs=2.0)
        # the gateway's time stays the gateway's: next to the server's host clock (within the delivery delay
        # of a busy machine), not the device's 5 min away
        assert abs((r.gateway_time - r.server_time).total_seconds()) < 5.0
    skewed = [r for r in temperature if r.clock_offset_s > SKEW_S / 2]  # type: ignore[operator]
    assert len(skewed) >= 3 and all(r.clock_offset_s == pytest.approx(SKEW_S, abs=2.0) for r in skewed)
    first_ahead = next(r for r in records if r.clock_offset_s is not None and r.clock_offset_s > SKEW_S / 2)
    assert first_ahead.seq < ahead.seq and skewed[-1].seq < normal.seq, "the alarm follows the first read 5 min ahead"
    after = [r for r in temperature if r.seq > normal.seq]
    assert after and all(abs(r.clock_offset_s) < 2.0 for r in after)  # type: ignore[arg-type]

    # the device clock went back 5 min: the journal keeps its order (seq, gateway time) and repeats nothing
    mine = of(records, "CP-1")
    seqs = [r.seq for r in mine]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # received in order (a monitor's alarm keeps the time of the reading that raised it, so only readings)
    readings = [r for r in mine if r.kind is Kind.MEASUREMENT]
    assert all(a.gateway_time <= b.gateway_time for a, b in pairwise(readings))
    samples = Counter((r.parameter, r.source_time, r.value) for r in mine if r.kind is Kind.MEASUREMENT)
    assert samples.most_common(1)[0][1] == 1, "no device sample journalled twice"
    went_back = [b for a, b in pairwise(temperature) if b.source_time < a.source_time]  # type: ignore[operator]
    assert went_back, "the device's own times went back with its clock, and are kept as the device said"
