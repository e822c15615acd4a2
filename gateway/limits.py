"""Particle limits: action limits from a regulatory table, alert limits from the site, and the
alarm events an excursion and its return to normal produce.

A value equal to a limit is within it (Annex 1: 3 520/m³ passes Grade A, 3 521 does not). An alarm is
raised on the transition only, stamped with the device's sample time, and a bad-quality value is
never judged: a sensor failure is not a clean room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.config import LimitTable, ParticleLimitsConfig
from gateway.errors import ConfigError
from gateway.particles import Concentration
from gateway.points import DeviceMap

Level = Literal["normal", "alert", "action"]
ALARM_VALUES: dict[Level, str] = {
    "normal": "normal",
    "alert": "alert_limit_exceeded",
    "action": "action_limit_exceeded",
}


@dataclass(frozen=True, slots=True)
class SizeLimits:
    size_um: float
    action: float | None
    alert: float | None


@dataclass(frozen=True)
class ParticleLimits:
    """The limits that apply to one counter, resolved from its config and the table."""

    table: LimitTable
    config: ParticleLimitsConfig
    by_size: dict[float, SizeLimits]

    @property
    def basis(self) -> str:
        state = self.config.state.replace("_", " ")
        return f"{self.table.citation}, Grade {self.config.grade} {state}"


def resolve_limits(config: ParticleLimitsConfig, table: LimitTable, device_map: DeviceMap) -> ParticleLimits:
    """Match the table's sizes to the counter's channels; a size the counter cannot see is an error."""
    if config.grade not in table.limits:
        raise ConfigError(f"grade {config.grade} is not in limit table {table.name}")
    action = table.limits[config.grade].get(config.state, {})
    if device_map.particle_counter is None:
        raise ConfigError(f"particle_limits given, but register map {device_map.name} is not a particle counter")
    sizes = {c.size_um for c in device_map.particle_counter.channels}
    problems = [
        f"{label} limit for {size} µm, but map {device_map.name} has no {size} µm channel"
        for label, table_sizes in (("action", action), ("alert", config.alert_limits_per_m3))
        for size in table_sizes
        if size not in sizes
    ]
    if problems:
        raise ConfigError(problems)
    by_size = {}
    for size in sorted(sizes):
        act = action.get(size)
        alert = config.alert_limits_per_m3.get(size)
        if alert is None and config.alert_fraction is not None and act is not None:
            alert = act * config.alert_fraction
        if act is not None or alert is not None:
            by_size[size] = SizeLimits(size, act, alert)
    return ParticleLimits(table, config, by_size)


@dataclass(frozen=True, slots=True)
class Alarm:
    concentration: Concentration
    level: Level
    limit: float | None
    detail: str


class LimitMonitor:
    """Per-counter excursion state: emits an Alarm when a size's level changes."""

    def __init__(self, limits: ParticleLimits) -> None:
        self.limits = limits
        self._level: dict[float, Level] = {}

    def level_of(self, size_um: float) -> Level:
        return self._level.get(size_um, "normal")

    def evaluate(self, concentrations: list[Concentration]) -> list[Alarm]:
        alarms = []
        for conc in concentrations:
            limits = self.limits.by_size.get(conc.size_um)
            if limits is None or conc.value is None or conc.quality.severity == "bad":
                continue
            level: Level = "normal"
            limit: float | None = None
            if limits.action is not None and conc.value > limits.action:
                level, limit = "action", limits.action
            elif limits.alert is not None and conc.value > limits.alert:
                level, limit = "alert", limits.alert
            previous = self.level_of(conc.size_um)
            if level == previous:
                continue
            self._level[conc.size_um] = level
            alarms.append(Alarm(conc, level, limit, self._describe(conc, level, limit, previous)))
        return alarms

    def _describe(self, conc: Concentration, level: Level, limit: float | None, previous: Level) -> str:
        value = _fmt(conc.value)
        if level == "normal":
            return f"≥{conc.size_um:g} µm back within limits at {value} /m3 (was {previous}; {self.limits.basis})"
        shown = _fmt(limit)
        return f"≥{conc.size_um:g} µm {value} /m3 above the {level} limit {shown} /m3 ({self.limits.basis})"


def _fmt(value: float | None) -> str:
    """3 520, 3 520.4: thin thousands, a decimal only where it decides the comparison."""
    if value is None:
        return "-"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", " ")
