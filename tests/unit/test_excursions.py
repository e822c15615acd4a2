"""The excursion monitor: delay, deadband, extremes, duration, and what it refuses to judge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.excursions import ExcursionLimit, ExcursionMonitor, check_limits
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, Quality, RawReading, ReadingBatch
from tests.fakes import FakeEquipment, fake_map

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


class Clock:
    """Readings one `step_s` apart on an injected clock, fed to a monitor one read at a time."""

    def __init__(self, monitor: ExcursionMonitor, *, step_s: float = 10.0, parameter: str = "dewar") -> None:
        self.monitor, self.step_s, self.parameter = monitor, step_s, parameter
        self.now = T0
        self.emitted: list[dict[str, Any]] = []

    def feed(self, *values: float | None, quality: Quality = Quality.GOOD, source_time: bool = True) -> list[dict]:
        out = []
        for value in values:
            row = {"parameter": self.parameter, "kind": Kind.MEASUREMENT, "value": value, "unit": "Cel",
                   "quality": quality, "source": f"test://{self.parameter}",
                   "source_time": self.now if source_time else None,
                   "gateway_time": self.now + timedelta(seconds=0.5)}
            out += self.monitor.observe([row])
            self.now += timedelta(seconds=self.step_s)
        self.emitted += out
        return out


def above(limit: float = -150.0, **kw: Any) -> ExcursionLimit:
    return ExcursionLimit(parameter="dewar", above=limit, **kw)


def test_an_excursion_is_one_start_and_one_end_with_typed_duration_and_extremes() -> None:
    clock = Clock(ExcursionMonitor([above(deadband=2.0)]))
    assert clock.feed(-190.0, -160.0, -150.0) == []  # equal to the limit is within it
    (start,) = clock.feed(-149.0)
    assert (start["parameter"], start["kind"], start["value"]) == ("dewar_excursion", Kind.ALARM, "above_limit")
    assert start["source_time"] == T0 + timedelta(seconds=30) and start["source"] == "test://dewar"
    assert clock.feed(-140.0, -151.0, -145.0) == []  # -151 is inside the limit but not by the deadband
    end, duration, low, high = clock.feed(-152.0)
    assert (end["kind"], end["value"], end["source_time"]) == (Kind.ALARM, "normal", T0 + timedelta(seconds=70))
    assert (duration["parameter"], duration["kind"], duration["value"], duration["unit"]) == (
        "dewar_excursion_duration", Kind.MEASUREMENT, 40.0, "s")
    assert (low["parameter"], low["value"], low["unit"]) == ("dewar_excursion_min", -151.0, "Cel")
    assert (high["parameter"], high["value"], high["unit"]) == ("dewar_excursion_max", -140.0, "Cel")
    assert "min -151 Cel, max -140 Cel" in end["detail"] and "40 s" in end["detail"]
    assert clock.feed(-190.0, -180.0) == []


def test_a_short_excursion_within_the_delay_raises_nothing() -> None:
    clock = Clock(ExcursionMonitor([above(delay_s=60.0)]))
    assert clock.feed(-149.0, -148.0, -149.0, -160.0) == []  # 30 s beyond, then back
    assert clock.feed(-149.0, -148.0, -147.0, -146.0, -145.0, -144.0) == []  # 50 s beyond
    (start,) = clock.feed(-143.0)  # 60 s beyond: raised, stamped with the first reading beyond
    assert start["source_time"] == T0 + timedelta(seconds=40)
    assert "still above after 60 s (delay 60 s)" in start["detail"]
    _end, duration, low, high = clock.feed(-170.0)
    assert (duration["value"], low["value"], high["value"]) == (70.0, -149.0, -143.0)


def test_the_deadband_keeps_noise_around_the_limit_one_excursion() -> None:
    clock = Clock(ExcursionMonitor([above(deadband=1.0)]))
    clock.feed(-160.0, -149.9, -150.1, -149.8, -150.5, -149.7, -151.0)
    assert [r["value"] for r in clock.emitted if r["kind"] is Kind.ALARM] == ["above_limit", "normal"]


def test_a_limit_below_and_two_limits_on_one_parameter() -> None:
    limits = [above(-160.0, name="dewar_alert"), above(-150.0), ExcursionLimit(parameter="dewar", below=-200.0)]
    clock = Clock(ExcursionMonitor(limits))
    clock.feed(-170.0, -155.0, -145.0, -165.0, -201.0, -199.0)
    alarms = [(r["parameter"], r["value"]) for r in clock.emitted if r["kind"] is Kind.ALARM]
    assert alarms == [("dewar_alert", "above_limit"), ("dewar_excursion", "above_limit"),
                      ("dewar_alert", "normal"), ("dewar_excursion", "normal"),
                      ("dewar_excursion", "below_limit"), ("dewar_excursion", "normal")]


@pytest.mark.parametrize("quality", [Quality.BAD_SENSOR_FAILURE, Quality.BAD_DEVICE_FAILURE])
def test_bad_quality_is_never_judged(quality: Quality) -> None:
    clock = Clock(ExcursionMonitor([above()]))
    assert clock.feed(99.0, quality=quality) == []  # an open thermocouple is not a warm dewar
    assert clock.feed(None, quality=quality) == []
    clock.feed(-140.0)
    assert clock.feed(-190.0, quality=quality) == []  # nor does a bad reading end an excursion
    assert [r["value"] for r in clock.feed(-160.0)] == ["normal", 20.0, -140.0, -140.0]


def test_uncertain_values_are_judged_and_other_rows_ignored() -> None:
    clock = Clock(ExcursionMonitor([above()]))
    assert len(clock.feed(-140.0, quality=Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED)) == 1
    other = {"parameter": "dewar", "kind": Kind.EVENT, "value": 3.0, "quality": Quality.GOOD, "gateway_time": T0}
    assert clock.monitor.observe([other, {**other, "parameter": "lid", "kind": Kind.MEASUREMENT}]) == []


def test_without_a_device_clock_the_gateway_time_counts() -> None:
    clock = Clock(ExcursionMonitor([above()]), step_s=2.5)
    clock.feed(-140.0, -140.0, source_time=False)
    _end, duration, *_ = clock.feed(-170.0, source_time=False)
    assert duration["value"] == 5.0 and duration["source_time"] is None


def test_limits_are_checked_against_the_map() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ExcursionLimit(parameter="dewar", above=-150, below=-200)
    with pytest.raises(ValidationError, match="exactly one"):
        ExcursionLimit(parameter="dewar")
    problems = check_limits([above(), above(-160.0), ExcursionLimit(parameter="lid", below=0)],
                            {"dewar": "Cel", "dewar_excursion_duration": "s"})
    assert len(problems) == 2
    assert "also used by excursions.0" in problems[0]
    assert problems[1].startswith("excursions.2.parameter: 'lid' is not a parameter")


def test_the_pipeline_journals_the_excursion_with_the_equipment_identity() -> None:
    eq = FakeEquipment(id="LN2-1", equipment_class="cryo_storage", points=["dewar"])
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64, monitors=[ExcursionMonitor([above()])])

    def read(value: float, at: datetime) -> list:
        reading = RawReading("LN2-1", "dewar", "visa://x/@101", value, at)
        return [d for d, _ in pipeline.process(ReadingBatch("LN2-1", [reading], lot_id="LOT-9"))]

    read(-180.0, T0)
    _m, start = read(-120.0, T0 + timedelta(seconds=5))
    _m, end, duration, low, high = read(-180.0, T0 + timedelta(seconds=65))
    assert (start.kind, start.value, end.value, duration.value, duration.unit) == (
        Kind.ALARM, "above_limit", "normal", 60.0, "s")
    assert (low.value, high.value, high.unit) == (-120.0, -120.0, "Cel")
    assert all(d.equipment_id == "LN2-1" and d.lot_id == "LOT-9" and d.source == "visa://x/@101"
               for d in (start, end, duration))
