"""The freezer's clock 5 min ahead, then set back, through the real gateway (freezer adapter, supervisor,
pipeline, clock-drift monitor, journal): each sample line compares the clocks, one drift alarm and one
return to normal, and the journal keeps its order when the freezer's own times go back."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from device_sims.freezer import FreezerSim
from gateway.journal import verify
from gateway.records import Kind, ProcessRecord
from tests.integration.test_visa_support import of, run_until

SKEW_S = 300.0


def site(tmp_path: Path, sim: FreezerSim) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "gateway: {id: gw-crf-clock}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2, backoff_jitter: 0}\n"
        "equipment:\n"
        f"  - {{id: CRF-1, class: controlled_rate_freezer, kind: crf, port: '{sim.serial_path}',\n"
        "     approved_profiles: [classic-cell-therapy], reply_timeout_s: 1, silence_timeout_s: 3,\n"
        "     clock: {max_offset_s: 120}}\n"
    )
    return path


def set_back_once_alarmed(sim: FreezerSim) -> object:
    def during(records: list[ProcessRecord]) -> None:
        if of(records, "CRF-1", "clock_drift", value="ahead") and not sim.state().faults_active:
            sim.inject("clock_skew", seconds=-SKEW_S)  # on top of skew_s: the clock jumps back to the right time
    return during


def done(records: list[ProcessRecord]) -> bool:
    return bool(of(records, "CRF-1", "clock_drift", value="normal"))


async def test_a_freezer_clock_ahead_then_set_back_is_one_alarm_and_nothing_reordered(tmp_path: Path) -> None:
    async with FreezerSim(time_scale=1, sample_interval_s=1, seed=5, skew_s=SKEW_S) as sim:
        records = await run_until(site(tmp_path, sim), done, during=set_back_once_alarmed(sim), timeout_s=20)
    assert verify(tmp_path / "journal.sqlite").ok

    ahead, normal = of(records, "CRF-1", "clock_drift")
    assert (ahead.kind, ahead.value, normal.value) == (Kind.ALARM, "ahead", "normal")
    assert ahead.detail is not None and ahead.detail.endswith("s ahead of the gateway, above the 120 s limit")
    assert ahead.clock_offset_s == pytest.approx(SKEW_S, abs=2.5)

    chamber = of(records, "CRF-1", "chamber_temperature")
    for r in chamber:
        assert r.source_time is not None and r.clock_offset_s is not None
        assert (r.source_time - r.gateway_time).total_seconds() == r.clock_offset_s, "the offset is its two times"
        assert r.source_time.microsecond == 0, "whole seconds, as the freezer wrote them"
    before = [r for r in chamber if r.clock_offset_s > SKEW_S / 2]  # type: ignore[operator]
    after = [r for r in chamber if r.clock_offset_s <= SKEW_S / 2]  # type: ignore[operator]
    assert before and all(r.clock_offset_s == pytest.approx(SKEW_S, abs=2.5) for r in before)
    assert after and all(-3.0 < r.clock_offset_s <= 0.5 for r in after)  # type: ignore[operator]
    assert before[0].seq < ahead.seq and before[-1].seq < after[0].seq < normal.seq
    assert after[0].source_time < before[-1].source_time  # type: ignore[operator]  # the freezer's times went back

    mine = of(records, "CRF-1")
    seqs = [r.seq for r in mine]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # received in order (a monitor's alarm keeps the time of the reading that raised it, so only readings)
    readings = [r for r in mine if r.kind is Kind.MEASUREMENT]
    assert all(a.gateway_time <= b.gateway_time for a, b in pairwise(readings))
    lines = Counter(r.source_time for r in chamber)
    assert lines.most_common(1)[0][1] == 1, "each sample line journalled once"
