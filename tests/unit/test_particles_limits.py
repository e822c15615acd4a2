"""Counts → particles/m³ and Annex 1 limits: exact at the boundary, alarms on transitions only."""

from __future__ import annotations

import pytest

from gateway.config import PROJECT_CONFIG_DIR, ParticleLimitsConfig, load_limit_table
from gateway.errors import ConfigError
from gateway.limits import LimitMonitor, resolve_limits
from gateway.normalise import normalise_batch
from gateway.particles import concentration_parameter, concentrations
from gateway.points import DeviceMap, ParticleChannel, ParticleCounterSpec, PointSpec, VolumeSpec
from gateway.records import Quality, RawReading, utc_now

ANNEX1 = load_limit_table("eu-gmp-annex1-2022", [PROJECT_CONFIG_DIR])


def counter_map(*, mode: str = "cumulative", by_flow: bool = False, sizes: tuple[float, ...] = (0.5, 5.0)) -> DeviceMap:
    points = {f"ch{i}": PointSpec(name=f"ch{i}", parameter=f"count_{i}") for i in range(len(sizes))}
    points["volume"] = PointSpec(name="volume", unit="m3")
    points["flow"] = PointSpec(name="flow", scale=0.01, unit="[ft_i]3/min")
    points["duration"] = PointSpec(name="duration", unit="s")
    volume = (
        VolumeSpec(flow_point="flow", flow_unit="[ft_i]3/min", duration_point="duration")
        if by_flow
        else VolumeSpec(volume_point="volume", volume_unit="m3")
    )
    pc = ParticleCounterSpec(
        count_mode=mode,  # type: ignore[arg-type]
        channels=[ParticleChannel(point=f"ch{i}", size_um=s) for i, s in enumerate(sizes)],
        volume=volume,
    )
    return DeviceMap(name="test-counter", points=points, particle_counter=pc)


def sample(device_map: DeviceMap, counts: list[int], *, volume: float = 1.0, flow: int = 100,
           duration: int = 60, quality: Quality = Quality.GOOD) -> dict:
    now = utc_now()
    values = {f"ch{i}": c for i, c in enumerate(counts)} | {"volume": volume, "flow": flow, "duration": duration}
    readings = [RawReading("PC", k, f"test://{k}", v, now, quality=quality if k.startswith("ch") else Quality.GOOD)
                for k, v in values.items()]
    return normalise_batch(readings, device_map)


def test_concentration_from_flow_and_duration_in_cubic_feet() -> None:
    m = counter_map(by_flow=True)
    out = concentrations(m.particle_counter, sample(m, [100, 3], flow=100, duration=60))
    # 1 CFM for 60 s = 0.028316846592 m³
    assert out[0].parameter == "particle_concentration_0_5um"
    assert out[0].value == pytest.approx(100 / 0.028316846592)
    assert out[1].value == pytest.approx(3 / 0.028316846592)


def test_differential_counts_are_summed_upward() -> None:
    m = counter_map(mode="differential", sizes=(0.3, 0.5, 5.0))
    out = concentrations(m.particle_counter, sample(m, [50, 20, 2], volume=2.0))
    assert [c.value for c in out] == [36.0, 11.0, 1.0]


def test_zero_volume_gives_bad_quality_not_infinity() -> None:
    m = counter_map()
    out = concentrations(m.particle_counter, sample(m, [10, 1], volume=0.0))
    assert all(c.value is None and c.quality is Quality.BAD for c in out)


def test_channel_quality_carries_into_concentration() -> None:
    m = counter_map()
    out = concentrations(m.particle_counter, sample(m, [10, 1], quality=Quality.BAD_SENSOR_FAILURE))
    assert all(c.quality is Quality.BAD_SENSOR_FAILURE for c in out)


def test_parameter_names_are_stable_per_size() -> None:
    assert concentration_parameter(0.5) == "particle_concentration_0_5um"
    assert concentration_parameter(5) == "particle_concentration_5_0um"
    assert concentration_parameter(10.0) == "particle_concentration_10_0um"


def monitor(grade: str = "A", state: str = "in_operation", **kw: object) -> LimitMonitor:
    cfg = ParticleLimitsConfig(grade=grade, state=state, **kw)  # type: ignore[arg-type]
    return LimitMonitor(resolve_limits(cfg, ANNEX1, counter_map()))


def evaluate(mon: LimitMonitor, c05: int, c5: int = 0, quality: Quality = Quality.GOOD) -> list:
    m = counter_map()
    return mon.evaluate(concentrations(m.particle_counter, sample(m, [c05, c5], volume=1.0, quality=quality)))


def test_grade_a_boundary_is_exact_3520_within_3521_not() -> None:
    mon = monitor()
    assert evaluate(mon, 3520) == []
    alarms = evaluate(mon, 3521)
    assert [(a.level, a.limit, a.concentration.size_um) for a in alarms] == [("action", 3520, 0.5)]
    assert "3 521 /m3 above the action limit 3 520 /m3" in alarms[0].detail
    assert "Grade A in operation" in alarms[0].detail


def test_alarm_on_transition_only_and_return_to_normal() -> None:
    mon = monitor()
    assert len(evaluate(mon, 5000)) == 1
    assert evaluate(mon, 6000) == []  # still exceeded: no new alarm
    back = evaluate(mon, 100)
    assert [a.level for a in back] == ["normal"] and "back within limits" in back[0].detail


def test_five_micron_grade_a_limit_is_29() -> None:
    mon = monitor()
    assert evaluate(mon, 0, 29) == []
    assert [a.concentration.size_um for a in evaluate(mon, 0, 30)] == [5.0]


def test_alert_limits_from_site_and_from_fraction() -> None:
    explicit = monitor(alert_limits_per_m3={0.5: 2000})
    assert [a.level for a in evaluate(explicit, 2001)] == ["alert"]
    assert [a.level for a in evaluate(explicit, 3600)] == ["action"]
    fraction = monitor(alert_fraction=0.5)
    assert [a.level for a in evaluate(fraction, 1761)] == ["alert"]


def test_grade_and_state_select_the_row() -> None:
    mon = monitor(grade="B", state="in_operation")
    assert evaluate(mon, 352_000) == []
    assert [a.level for a in evaluate(mon, 352_001)] == ["action"]
    rest = monitor(grade="B", state="at_rest")
    assert [a.level for a in evaluate(rest, 3521)] == ["action"]


def test_bad_quality_is_never_judged() -> None:
    mon = monitor()
    assert evaluate(mon, 99_999, quality=Quality.BAD_SENSOR_FAILURE) == []


def test_limit_for_a_size_the_counter_cannot_see_is_a_config_error() -> None:
    cfg = ParticleLimitsConfig(grade="A", state="at_rest")
    with pytest.raises(ConfigError, match=r"no 5\.0 µm channel"):
        resolve_limits(cfg, ANNEX1, counter_map(sizes=(0.3, 0.5)))


def test_grade_d_in_operation_has_no_predetermined_limit() -> None:
    mon = monitor(grade="D", state="in_operation")
    assert evaluate(mon, 99_000_000, 99_000) == []
