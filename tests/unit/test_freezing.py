"""Profile conformance with synthetic curves and an injected clock: in band, drift out of band and back,
the exotherm inside and beyond its allowance, a loaded profile that is not the approved one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.freezing import (
    ConformanceMonitor,
    FreezingProfile,
    canonical_checksum,
    canonical_text,
    load_profile,
    profile_path,
)
from gateway.records import Kind, Quality

T0 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
CLASSIC = load_profile(profile_path("classic-cell-therapy"))


def test_the_shipped_classic_profile_and_its_checksum() -> None:
    assert canonical_text(CLASSIC) == (
        "classic-cell-therapy;1;H,4.0,10.0;R,-6.0,1.00;R,-40.0,25.00;R,-14.0,10.00;R,-40.0,1.00;R,-90.0,10.00;"
        "H,-90.0,5.0"
    )
    assert CLASSIC.checksum == canonical_checksum(CLASSIC) == "11743B3C"
    banded = CLASSIC.model_copy(update={"chamber_tolerance_c": 1.0})
    assert banded.checksum == CLASSIC.checksum, "the reviewer's bands are not part of the freezer's profile"


def test_the_expected_curve_follows_steps_and_elapsed_time() -> None:
    assert CLASSIC.expected_c(1, 300) == 4.0
    assert CLASSIC.expected_c(2, 300) == pytest.approx(-1.0)
    assert CLASSIC.expected_c(2, 10_000) == -6.0, "a ramp stops at its target"
    assert CLASSIC.expected_c(4, 60) == pytest.approx(-30.0), "warm-back ramps up from -40"
    assert CLASSIC.expected_c(8, 0) is None


def test_profile_files_are_strict(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\nsteps:\n  - {type: ramp, target_c: -40, rate_c_per_min: 1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: .*first step must be a hold"):
        load_profile(bad)
    bad.write_text("name: x\nversion: 1\nsteps:\n  - {type: hold, target_c: 4, rate_c_per_min: 1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: steps.0: a hold has no rate_c_per_min"):
        load_profile(bad)


class Run:
    """Feeds a monitor rows as an adapter's records would reach it, on a device clock."""

    def __init__(self, profile: FreezingProfile = CLASSIC, checksum: str | None = None) -> None:
        self.monitor = ConformanceMonitor({profile.name: profile})
        self.t = T0
        self.out: list[dict[str, Any]] = []
        self.feed(("profile_name", Kind.STATE, profile.name), ("profile_checksum", Kind.STATE,
                                                               checksum or profile.checksum),
                  ("run_id", Kind.STATE, "R0001"), ("run_state", Kind.STATE, "running"))

    def feed(self, *rows: tuple[str, Kind, Any] | tuple[str, Kind, Any, Quality]) -> list[dict[str, Any]]:
        full = [{"parameter": r[0], "kind": r[1], "value": r[2], "quality": r[3] if len(r) > 3 else Quality.GOOD,
                 "source_time": self.t, "gateway_time": self.t} for r in rows]
        new = self.monitor.observe(full)
        self.out += new
        return new

    def sample(self, step: int, elapsed_s: float, chamber: float | None, sample: float | None = None) -> None:
        self.t = T0 + timedelta(seconds=elapsed_s + 3600 * step)
        rows: list[Any] = [("profile_step", Kind.STATE, step), ("step_elapsed", Kind.MEASUREMENT, elapsed_s),
                           ("chamber_temperature", Kind.MEASUREMENT, chamber,
                            Quality.GOOD if chamber is not None else Quality.BAD_SENSOR_FAILURE)]
        if sample is not None:
            rows.append(("sample_temperature", Kind.MEASUREMENT, sample))
        self.feed(*rows)

    def end(self, outcome: str = "complete") -> None:
        self.feed(("run_state", Kind.STATE, outcome))

    def alarms(self, parameter: str) -> list[dict[str, Any]]:
        return [r for r in self.out if r["parameter"] == parameter]


def ramp_curve(step: int, offset: float = 0.0, every_s: int = 10, until_s: int = 600) -> Iterator[tuple[int, float]]:
    for s in range(0, until_s + 1, every_s):
        yield s, CLASSIC.expected_c(step, s) + offset  # type: ignore[operator]


def test_a_run_in_band_is_conforming() -> None:
    run = Run()
    assert [(r["parameter"], r["value"]) for r in run.out] == [("profile_approval", "normal")]
    for s, c in ramp_curve(2, offset=2.5):  # inside ±3 all along
        run.sample(2, s, c, sample=c + 3)
    run.end()
    assert [(r["parameter"], r["value"]) for r in run.out[1:]] == [("profile_conformance", "conforming")]
    assert run.out[-1]["kind"] is Kind.EVENT


def test_a_drift_out_of_band_is_a_deviation_with_step_magnitude_and_time_then_its_return() -> None:
    run = Run()
    # step 5 (-1 Cel/min to -40): the chamber stops cooling after 5 min (LN2 gone), then recovers at 10 min
    for s in range(0, 1200, 10):
        expected = CLASSIC.expected_c(5, s)
        assert expected is not None
        chamber = expected if s < 300 else (expected + min((s - 300) / 60, 6.0) if s < 900 else expected + 0.5)
        run.sample(5, s, chamber)
    deviation, magnitude, back, peak = run.out[1:5]
    assert (deviation["parameter"], deviation["kind"], deviation["value"]) == (
        "chamber_profile_deviation", Kind.ALARM, "deviation")
    left_band_at = T0 + timedelta(seconds=3600 * 5 + 490)  # > 3 Cel off after 3 min 10 s
    assert deviation["source_time"] == left_band_at + timedelta(seconds=30), "declared after persist_s"
    assert "step 5 (cool -1 Cel/min to -40 Cel)" in deviation["detail"]
    assert f"since {left_band_at.isoformat()}" in deviation["detail"]
    assert "above the approved" in deviation["detail"] and "band ±3" in deviation["detail"]
    assert magnitude["parameter"] == "chamber_profile_deviation_c" and magnitude["unit"] == "Cel"
    assert 3.0 < magnitude["value"] < 4.0
    assert (back["parameter"], back["value"]) == ("chamber_profile_deviation", "normal")
    assert back["source_time"] == T0 + timedelta(seconds=3600 * 5 + 900)
    assert peak["value"] == 6.0 and "peak" in peak["detail"]
    run.end()
    assert run.out[-1]["value"] == "deviations" and "1 deviation(s)" in run.out[-1]["detail"]


def test_a_short_spike_and_a_slow_start_after_a_step_change_are_not_deviations() -> None:
    run = Run()
    for s, c in ramp_curve(2, until_s=300):
        run.sample(2, s, c + (5.0 if s == 100 else 0.0))  # one sample out: shorter than persist_s
    for s in range(0, 120, 10):  # step 3 drops at 25 Cel/min; the chamber lags during its 30 s grace
        expected = CLASSIC.expected_c(3, s)
        assert expected is not None
        run.sample(3, s, expected + (10.0 if s < 30 else 0.0))
    run.end()
    assert [r["value"] for r in run.out[1:]] == ["conforming"]


def test_the_exotherm_inside_its_allowance_is_accepted_beyond_it_is_an_alarm() -> None:
    inside = Run()
    for s, sample in ((0, -5.0), (60, -7.0), (70, -3.2), (130, -3.0), (400, -9.0)):  # +4 Cel rise at nucleation
        inside.sample(4, s, CLASSIC.expected_c(4, s), sample=sample)
    inside.end()
    assert [r["value"] for r in inside.out[1:]] == ["conforming"]

    beyond = Run()
    for s, sample in ((0, -5.0), (60, -9.0), (70, -2.5), (130, -2.6), (400, -9.5)):  # +6.5 Cel
        beyond.sample(4, s, CLASSIC.expected_c(4, s), sample=sample)
    exceeded, back, rise, peak = beyond.alarms("sample_exotherm") + beyond.alarms("sample_rise_c")
    assert exceeded["value"] == "allowance_exceeded" and "warmed 6.5 Cel above its lowest -9.0" in exceeded["detail"]
    assert "step 4 (latent-heat compensation: warm-back)" in exceeded["detail"]
    assert back["value"] == "normal" and rise["value"] == 6.5 and peak["value"] == 6.5


def test_a_bad_reading_is_not_judged() -> None:
    run = Run()
    run.sample(2, 120, None)
    run.sample(2, 200, None)
    run.end()
    assert [r["value"] for r in run.out[1:]] == ["conforming"]


def test_a_checksum_mismatch_and_an_unapproved_profile_are_alarms() -> None:
    run = Run(checksum="DEADBEEF")
    (alarm,) = run.out
    assert (alarm["parameter"], alarm["kind"], alarm["value"]) == ("profile_approval", Kind.ALARM, "checksum_mismatch")
    assert "checksum DEADBEEF" in alarm["detail"] and "11743B3C" in alarm["detail"]
    assert run.feed(("profile_name", Kind.STATE, CLASSIC.name), ("profile_checksum", Kind.STATE, "DEADBEEF")) == []
    (fixed,) = run.feed(("profile_checksum", Kind.STATE, CLASSIC.checksum))
    assert fixed["value"] == "normal"
    (other,) = run.feed(("profile_name", Kind.STATE, "fast-freeze"), ("profile_checksum", Kind.STATE, "01234567"))
    assert other["value"] == "profile_not_approved" and "approved: classic-cell-therapy" in other["detail"]


def test_a_pinned_device_checksum_replaces_the_canonical_one() -> None:
    pinned = CLASSIC.model_copy(update={"device_checksum": "A1B2"})
    run = Run(pinned, checksum="A1B2")
    assert run.out[0]["value"] == "normal"


def test_a_run_that_ends_while_deviating_says_so() -> None:
    run = Run()
    for s in range(0, 200, 10):
        run.sample(1, s, 10.0)
    run.end("aborted")
    values = [(r["parameter"], r["value"]) for r in run.out[1:]]
    assert ("chamber_profile_deviation", "run_ended") in values
    assert values[-1] == ("profile_conformance", "deviations")
