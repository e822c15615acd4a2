"""The clock-drift monitor and its setting: one alarm per excursion of the device clock, one return to
normal, whatever way the clock jumps; the offset on every record of a read; the gateway-wide limit and
an equipment's override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.clockdrift import ClockDriftMonitor, clock_monitors
from gateway.config import ClockConfig, load_site
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, RawReading, ReadingBatch
from gateway.runtime import build_pipeline
from tests.fakes import FakeEquipment, FakePlugin, fake_map

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


class Reads:
    """Reads one second apart on an injected gateway clock, each carrying one clock comparison."""

    def __init__(self, monitor: ClockDriftMonitor) -> None:
        self.monitor = monitor
        self.now = T0
        self.emitted: list[dict[str, Any]] = []

    def feed(self, *offsets: float | None) -> list[tuple[str, float]]:
        out = []
        for offset in offsets:
            row: dict[str, Any] = {"parameter": "temperature", "kind": Kind.MEASUREMENT, "value": 37.0,
                                   "gateway_time": self.now}
            if offset is not None:
                row["clock_offset_s"] = offset
                row["source_time"] = self.now + timedelta(seconds=offset)
            out += self.monitor.observe([row])
            self.now += timedelta(seconds=1)
        self.emitted += out
        return [(r["value"], r["clock_offset_s"]) for r in out]


def test_one_alarm_above_the_limit_and_one_return_to_normal() -> None:
    reads = Reads(ClockDriftMonitor(ClockConfig(max_offset_s=60, deadband_s=1)))
    assert reads.feed(0.2, -0.4, 60.0, None) == []  # equal to the limit is within it; no comparison, no verdict
    assert reads.feed(300.2) == [("ahead", 300.2)]
    assert reads.feed(300.4, 299.9, None, 59.5) == []  # still off, then inside but not by the deadband
    assert reads.feed(0.3) == [("normal", 0.3)]
    assert reads.feed(0.1, 0.2) == []
    ahead, normal = reads.emitted
    assert ahead["parameter"] == normal["parameter"] == "clock_drift"
    assert ahead["kind"] is normal["kind"] is Kind.ALARM
    assert ahead["detail"] == "device clock 300.2 s ahead of the gateway, above the 60 s limit"
    assert ahead["gateway_time"] == T0 + timedelta(seconds=4)
    assert ahead["source_time"] == ahead["gateway_time"] + timedelta(seconds=300.2)
    assert normal["detail"] == (
        "device clock 0.3 s ahead of the gateway, back within the 60 s limit; it was up to 300.4 s ahead of the "
        "gateway from 2026-11-22T08:00:04.000Z"
    )


def test_a_clock_jumping_back_and_forth_is_one_alarm_per_excursion_and_per_side() -> None:
    reads = Reads(ClockDriftMonitor(ClockConfig(max_offset_s=60)))
    assert reads.feed(-120.0) == [("behind", -120.0)]
    assert reads.feed(-125.0) == []
    assert reads.feed(0.0) == [("normal", 0.0)]
    assert reads.feed(3600.0, 3601.0) == [("ahead", 3600.0)]
    assert reads.feed(-3600.0) == [("behind", -3600.0)]  # past the limit on the other side: the alarm changes side
    assert reads.feed(-30.0) == [("normal", -30.0)]
    assert "the clock jumped: it was ahead" in reads.emitted[3]["detail"]
    assert "device clock 3600.0 s behind the gateway" in reads.emitted[3]["detail"]
    assert "it was up to 3601.0 s ahead of the gateway" in reads.emitted[4]["detail"]


def test_a_read_is_judged_on_its_own_offset_once() -> None:
    monitor = ClockDriftMonitor(ClockConfig(max_offset_s=10))
    rows = [{"parameter": p, "gateway_time": T0, "clock_offset_s": 11.0} for p in ("a", "b", "c")]
    (alarm,) = monitor.observe(rows)
    assert alarm["value"] == "ahead" and monitor.drifting == "ahead"


def test_the_setting_is_gateway_wide_with_an_equipment_override() -> None:
    site = ClockConfig(max_offset_s=30, deadband_s=2)
    assert ClockConfig().max_offset_s == 60
    plain = FakeEquipment(id="A", equipment_class="x")
    own = FakeEquipment.model_validate({"id": "B", "class": "x", "clock": {"max_offset_s": 300}})
    silent = FakeEquipment.model_validate({"id": "C", "class": "x", "clock": {"max_offset_s": None}})
    (a,) = clock_monitors(site, plain)
    (b,) = clock_monitors(site, own)
    assert (a.limit_s, a.deadband_s) == (30, 2)
    assert (b.limit_s, b.deadband_s) == (300, 2), "the override names only the limit: the deadband is the gateway's"
    assert clock_monitors(site, silent) == []
    with pytest.raises(ValidationError, match=r"deadband_s \(5\) must be below max_offset_s \(5\)"):
        ClockConfig(max_offset_s=5, deadband_s=5)
    with pytest.raises(ValidationError):
        ClockConfig(max_offset_s=0)


def test_the_offset_goes_on_every_record_of_the_read_and_the_alarm_follows_it() -> None:
    eq = FakeEquipment(id="CP-1", equipment_class="cell_processor", points=["temperature", "ph"])
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64,
                                 monitors=clock_monitors(ClockConfig(), eq))
    now = datetime.now(UTC)
    readings = [RawReading("CP-1", p, f"x/{p}", 7.0, now, source_time=now + timedelta(seconds=300))
                for p in eq.points]
    drafts = [d for d, _ in pipeline.process(ReadingBatch("CP-1", readings, events=[("x", "y")],
                                                          clock_offset_s=300.0))]
    assert [(d.parameter, d.clock_offset_s) for d in drafts] == [
        ("device_event", 300.0), ("temperature", 300.0), ("ph", 300.0), ("clock_drift", 300.0)]
    alarm = drafts[-1]
    assert (alarm.kind, alarm.value, alarm.source) == (Kind.ALARM, "ahead", "equipment://CP-1")
    assert alarm.gateway_time == now
    (plain,) = [d for d, _ in pipeline.process(ReadingBatch("CP-1", [RawReading("CP-1", "ph", "x/ph", 7.0, now)]))]
    assert plain.clock_offset_s is None, "a read without a comparison says nothing about the clock"


def test_a_site_file_sets_the_limit_and_the_running_pipeline_has_the_monitor(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "gateway: {id: gw-1}\n"
        "clock: {max_offset_s: 5}\n"
        "equipment:\n"
        "  - {id: A, class: x, kind: fake}\n"
        "  - {id: B, class: x, kind: fake, clock: {max_offset_s: null}}\n"
    )
    loaded = load_site(site, {"fake": FakePlugin()})  # type: ignore[dict-item]
    a, b = build_pipeline(loaded, "A"), build_pipeline(loaded, "B")
    assert [m.limit_s for m in a.monitors if isinstance(m, ClockDriftMonitor)] == [5]
    assert not [m for m in b.monitors if isinstance(m, ClockDriftMonitor)]
