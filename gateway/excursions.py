"""Excursion monitor: a limit per parameter, with a delay and a deadband, and one record per change.

The cold-chain excursion record a reviewer expects (a lot stored or shipped at ≤ −150 °C, a probe that
warmed above it): when it started, when it ended, how far it went and for how long. Protocol-free: any
adapter plugin can hand :class:`ExcursionMonitor` to the pipeline through its ``monitors`` hook.

What the journal gets, per limit named ``N`` (default ``<parameter>_excursion``):

============================  =========  ==========================  ====================================
parameter                     kind       value                       when
============================  =========  ==========================  ====================================
``N``                         alarm      ``"above_limit"`` or         the excursion is confirmed; the record
                                         ``"below_limit"`` (str)      keeps the time and source of the first
                                                                      reading beyond the limit
``N``                         alarm      ``"normal"`` (str)           the excursion ended; time and source of
                                                                      the first reading back inside
``N_duration``                measurement seconds (float, unit ``s``)  with the end: end time − start time
``N_min``, ``N_max``          measurement the extremes (float, the     with the end: over every judged reading
                                         parameter's unit)            from the start to the end, exclusive
============================  =========  ==========================  ====================================

Rules a caller may rely on:

- a value equal to the limit is within it (a label says "≤ −150 °C");
- the parameter is *beyond* once a value passes the limit, and stays beyond until a value is back
  inside by the deadband (``≤ above − deadband``): noise around the limit is one excursion, not many;
- an excursion is raised only once it has lasted ``delay_s`` (a lid opened for a few seconds is not one);
  one that ends sooner leaves no alarm (its readings are in the journal all the same);
- a bad-quality reading (no value, a sensor failure) is never judged: it neither starts, extends nor
  ends an excursion. Uncertain readings are judged; their value is what the device said;
- times are the device's (``source_time``) when the reading has one, else the gateway's.

The monitor keeps its state in memory: an excursion still open when the gateway stops has a start
record and no end; if the parameter is still beyond after the restart, a new excursion starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.records import Kind, Quality

Row = dict[str, Any]


class ExcursionLimit(BaseModel):
    """One limit on one parameter, as a site file writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameter: str = Field(min_length=1, description="the parameter judged, as it appears in records")
    above: float | None = Field(default=None, description="an excursion is a value above this (e.g. -150 for Cel)")
    below: float | None = Field(default=None, description="an excursion is a value below this")
    delay_s: float = Field(
        default=0.0, ge=0, description="how long the value must stay beyond the limit before the alarm is raised"
    )
    deadband: float = Field(
        default=0.0, ge=0, description="how far back inside the limit the value must come to end the excursion"
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="parameter of the alarm records (default <parameter>_excursion)",
    )
    basis: str = Field(default="", description="why this limit, shown in the alarm's detail (e.g. the product label)")

    @model_validator(mode="after")
    def _one_side(self) -> ExcursionLimit:
        if (self.above is None) == (self.below is None):
            raise ValueError("give above or below (exactly one)")
        return self

    @property
    def alarm_parameter(self) -> str:
        return self.name or f"{self.parameter}_excursion"

    @property
    def side(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def limit(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    def beyond(self, value: float) -> bool:
        """Past the limit (a value equal to the limit is within it)."""
        return value > self.limit if self.side == "above" else value < self.limit

    def back_inside(self, value: float) -> bool:
        """Inside the limit by at least the deadband."""
        if self.side == "above":
            return value <= self.limit - self.deadband
        return value >= self.limit + self.deadband


def check_limits(limits: Sequence[ExcursionLimit], parameters: Mapping[str, str | None]) -> list[str]:
    """Problems with a set of limits for a device whose parameters (name → unit) are given, one line each."""
    problems = []
    names: dict[str, int] = {}
    for i, limit in enumerate(limits):
        if limit.parameter not in parameters:
            known = ", ".join(sorted(parameters)) or "none"
            problems.append(f"excursions.{i}.parameter: {limit.parameter!r} is not a parameter of the map ({known})")
        if limit.alarm_parameter in parameters:
            problems.append(f"excursions.{i}: alarm parameter {limit.alarm_parameter!r} is already a map parameter")
        if limit.alarm_parameter in names:
            problems.append(
                f"excursions.{i}: alarm parameter {limit.alarm_parameter!r} is also used by excursions."
                f"{names[limit.alarm_parameter]}: give each limit on one parameter its own name"
            )
        names[limit.alarm_parameter] = i
    return problems


@dataclass(slots=True)
class _Open:
    """A parameter beyond its limit: since when, how far, and whether the alarm is raised yet."""

    start: Mapping[str, Any]
    start_at: datetime
    low: float
    high: float
    raised: bool = False


class ExcursionMonitor:
    """Judges the rows of each read against its limits; see the module docstring for what it emits."""

    def __init__(self, limits: Sequence[ExcursionLimit]) -> None:
        self.limits = list(limits)
        self._by_parameter: dict[str, list[int]] = {}
        for i, limit in enumerate(self.limits):
            self._by_parameter.setdefault(limit.parameter, []).append(i)
        self._open: dict[int, _Open] = {}

    def is_open(self, alarm_parameter: str) -> bool:
        """True while that limit's parameter is beyond it (raised or still within the delay)."""
        return any(self.limits[i].alarm_parameter == alarm_parameter for i in self._open)

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        out: list[Row] = []
        for row in rows:
            indexes = self._by_parameter.get(row.get("parameter", ""))
            if indexes is None or not _judged(row):
                continue
            for i in indexes:
                out += self._judge(i, row)
        return out

    def _judge(self, i: int, row: Mapping[str, Any]) -> list[Row]:
        limit, value, at = self.limits[i], float(row["value"]), _time(row)
        current = self._open.get(i)
        if current is None:
            if not limit.beyond(value):
                return []
            current = self._open[i] = _Open(row, at, value, value)
        elif limit.back_inside(value):
            del self._open[i]
            return self._end(limit, current, row, at) if current.raised else []
        else:
            current.low, current.high = min(current.low, value), max(current.high, value)
        if not current.raised and (at - current.start_at).total_seconds() >= limit.delay_s:
            current.raised = True
            return [self._start(limit, current, row)]
        return []

    def _start(self, limit: ExcursionLimit, current: _Open, confirming: Mapping[str, Any]) -> Row:
        first = current.start
        unit = first.get("unit")
        held = (_time(confirming) - current.start_at).total_seconds()
        detail = (
            f"{limit.parameter} {_fmt(first['value'], unit)} is {limit.side} the limit {_fmt(limit.limit, unit)} "
            f"since {_iso(current.start_at)}"
        )
        if limit.delay_s > 0:
            detail += f"; still {limit.side} after {_secs(held)} s (delay {limit.delay_s:g} s)"
        return self._row(limit, first, Kind.ALARM, f"{limit.side}_limit", None, _with_basis(detail, limit))

    def _end(self, limit: ExcursionLimit, current: _Open, back: Mapping[str, Any], at: datetime) -> list[Row]:
        unit = back.get("unit")
        duration = (at - current.start_at).total_seconds()
        since = f"excursion {limit.side} {_fmt(limit.limit, unit)} from {_iso(current.start_at)} to {_iso(at)}"
        detail = (
            f"{limit.parameter} back to {_fmt(back['value'], unit)} (deadband {limit.deadband:g}); {since}, "
            f"{_secs(duration)} s, min {_fmt(current.low, unit)}, max {_fmt(current.high, unit)}"
        )
        name = limit.alarm_parameter
        return [
            self._row(limit, back, Kind.ALARM, "normal", None, _with_basis(detail, limit)),
            self._row(limit, back, Kind.MEASUREMENT, duration, "s", since, parameter=f"{name}_duration"),
            self._row(limit, back, Kind.MEASUREMENT, current.low, unit, since, parameter=f"{name}_min"),
            self._row(limit, back, Kind.MEASUREMENT, current.high, unit, since, parameter=f"{name}_max"),
        ]

    @staticmethod
    def _row(
        limit: ExcursionLimit,
        reading: Mapping[str, Any],
        kind: Kind,
        value: str | float,
        unit: str | None,
        detail: str,
        *,
        parameter: str | None = None,
    ) -> Row:
        """A derived row that keeps the reading's source and times (as particle limit alarms do)."""
        row: Row = {
            "parameter": parameter or limit.alarm_parameter,
            "kind": kind,
            "value": value,
            "unit": unit,
            "quality": Quality.GOOD,
            "source_time": reading.get("source_time"),
            "server_time": reading.get("server_time"),
            "gateway_time": reading["gateway_time"],
            "detail": detail,
        }
        if reading.get("source"):
            row["source"] = reading["source"]
        return row


def _judged(row: Mapping[str, Any]) -> bool:
    """A measurement with a number and a quality that is not bad."""
    value = row.get("value")
    if row.get("kind", Kind.MEASUREMENT) != Kind.MEASUREMENT:
        return False
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return False
    return Quality(row.get("quality", Quality.GOOD)).severity != "bad"


def _time(row: Mapping[str, Any]) -> datetime:
    source_time = row.get("source_time")
    return source_time if source_time is not None else row["gateway_time"]  # type: ignore[no-any-return]


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fmt(value: float, unit: str | None) -> str:
    return f"{value:g} {unit}" if unit else f"{value:g}"


def _secs(seconds: float) -> str:
    """Seconds to a tenth, for reading; the typed duration record keeps the exact value."""
    return f"{round(seconds, 1):g}"


def _with_basis(detail: str, limit: ExcursionLimit) -> str:
    return f"{detail} ({limit.basis})" if limit.basis else detail
