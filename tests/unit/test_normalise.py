"""Normalising never clamps, never drops, and says why a value is not Good."""

from __future__ import annotations

import math

from gateway.normalise import normalise_reading
from gateway.points import PointSpec
from gateway.records import Kind, Quality, RawReading, utc_now


def reading(value: object, quality: Quality = Quality.GOOD) -> RawReading:
    return RawReading("PC-1", "p", "test://PC-1/p", value, utc_now(), quality=quality)


def test_scale_and_offset_give_engineering_value() -> None:
    spec = PointSpec(name="p", parameter="air_flow", unit="[ft_i]3/min", scale=0.01)
    out = normalise_reading(reading(100), spec)
    assert out.value == 1.0 and out.quality is Quality.GOOD


def test_integer_stays_integer_without_scaling() -> None:
    out = normalise_reading(reading(1234567), PointSpec(name="p", parameter="particle_count_0_5um"))
    assert out.value == 1234567 and isinstance(out.value, int)


def test_out_of_range_is_kept_and_flagged_not_clamped() -> None:
    spec = PointSpec(name="p", parameter="temperature", unit="Cel", valid_min=-10, valid_max=40)
    high = normalise_reading(reading(41.5), spec)
    low = normalise_reading(reading(-10.5), spec)
    assert high.value == 41.5 and high.quality is Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED
    assert "above the valid maximum 40" in (high.detail or "")
    assert low.value == -10.5 and low.quality is Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED
    edge = normalise_reading(reading(40.0), spec)
    assert edge.quality is Quality.GOOD


def test_range_flag_does_not_hide_a_worse_device_quality() -> None:
    spec = PointSpec(name="p", parameter="temperature", valid_max=40)
    out = normalise_reading(reading(50.0, Quality.BAD_SENSOR_FAILURE), spec)
    assert out.quality is Quality.BAD_SENSOR_FAILURE


def test_state_codes_become_names_and_unknown_codes_are_flagged() -> None:
    spec = PointSpec(name="p", parameter="device_state", kind=Kind.STATE, states={0: "idle", 1: "sampling"})
    assert normalise_reading(reading(1), spec).value == "sampling"
    unknown = normalise_reading(reading(7), spec)
    assert unknown.value == 7 and unknown.quality is Quality.UNCERTAIN
    assert "state code 7" in (unknown.detail or "")


def test_nan_is_never_journalled_as_a_number() -> None:
    out = normalise_reading(reading(math.nan), PointSpec(name="p", parameter="temperature"))
    assert out.value is None and out.quality is Quality.BAD_DECODING_ERROR


def test_unmapped_point_is_kept_as_configuration_error() -> None:
    out = normalise_reading(reading(3), None)
    assert out.parameter == "unmapped.p" and out.value == 3
    assert out.quality is Quality.BAD_CONFIGURATION_ERROR and out.journalled


def test_bool_and_none_pass_through_with_their_quality() -> None:
    spec = PointSpec(name="p", parameter="laser_alert", kind=Kind.STATE, scale=2.0)
    assert normalise_reading(reading(True), spec).value is True
    gone = normalise_reading(reading(None, Quality.BAD_DECODING_ERROR), spec)
    assert gone.value is None and gone.quality is Quality.BAD_DECODING_ERROR


def test_internal_points_are_not_journalled() -> None:
    out = normalise_reading(reading(60), PointSpec(name="p", parameter=None, unit="s"))
    assert not out.journalled
