"""Clock-drift monitor: a device clock too far from the gateway's is one alarm, and one return to normal.

ALCOA+ *Contemporaneous* (DOMAIN §6.3, OQ-14): every record keeps the device's time (``source_time``)
and the gateway's (``gateway_time``), and the offset between the two clocks is watched. An adapter that
can compare the device's clock with the gateway's puts the result on its batch
(``ReadingBatch.clock_offset_s``); the pipeline writes it on every record of that read, and this monitor
judges it against the equipment's ``clock:`` limit (the gateway-wide one unless the equipment overrides).

What the journal gets (parameter ``clock_drift``, kind alarm, ``clock_offset_s`` = the offset judged):

=========================  =================================================================================
value                      when
=========================  =================================================================================
``ahead`` / ``behind``     the offset passed the limit: ``device clock 300.2 s ahead of the gateway, above the
                           60 s limit``; again with the other value if the clock jumps past the limit on the
                           other side without coming back inside first
``normal``                 the offset is back inside the limit by the deadband; the detail says how far it
                           went and since when
=========================  =================================================================================

Rules a caller may rely on:

- equal to the limit is within it; the alarm ends only at ``|offset| <= max_offset_s - deadband_s``, so
  jitter around the limit is one alarm, not many;
- one read is judged once, on the last offset its rows carry (they all carry the same one);
- a read without an offset (a device with no clock, a communication gap) neither raises nor ends an alarm;
- the alarm keeps the times of the read that showed it: ``gateway_time`` is the gateway's, so a device
  clock jumping back and forth cannot move an alarm out of order;
- the state is in memory: an alarm open when the gateway stops has no end; if the clock is still off
  after the restart, a new alarm is raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gateway.config import ClockConfig, EquipmentConfig
from gateway.monitors import RecordMonitor, Row
from gateway.records import Kind, Quality

PARAMETER = "clock_drift"

Side = Literal["ahead", "behind"]


@dataclass(slots=True)
class _Drift:
    """An open clock-drift alarm: which side, since when, and the furthest the clock went."""

    side: Side
    since: datetime
    worst_s: float


class ClockDriftMonitor:
    """Judges one equipment's ``clock_offset_s`` against its limit; see the module docstring."""

    def __init__(self, config: ClockConfig) -> None:
        if config.max_offset_s is None:
            raise ValueError("a clock-drift monitor needs a max_offset_s (null means no monitor)")
        self.limit_s: float = config.max_offset_s
        self.deadband_s = config.deadband_s
        self._open: _Drift | None = None

    @property
    def drifting(self) -> Side | None:
        """The side of an open alarm, or None while the clock is within its limit."""
        return self._open.side if self._open is not None else None

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        row = next((r for r in reversed(rows) if r.get("clock_offset_s") is not None), None)
        if row is None:
            return []
        offset = float(row["clock_offset_s"])
        side: Side = "ahead" if offset > 0 else "behind"
        current = self._open
        if current is None:
            if abs(offset) <= self.limit_s:
                return []
            self._open = _Drift(side, row["gateway_time"], offset)
            return [self._alarm(row, side, offset, f"{_where(offset)}, above the {self.limit_s:g} s limit")]
        if abs(offset) <= self.limit_s - self.deadband_s:
            self._open = None
            detail = (
                f"{_where(offset)}, back within the {self.limit_s:g} s limit; it was up to "
                f"{_where(current.worst_s, device=False)} from {_iso(current.since)}"
            )
            return [self._alarm(row, "normal", offset, detail)]
        if abs(offset) > abs(current.worst_s):
            current.worst_s = offset
        if abs(offset) > self.limit_s and side != current.side:
            was, current.side = current.side, side
            detail = f"{_where(offset)}, above the {self.limit_s:g} s limit (the clock jumped: it was {was})"
            return [self._alarm(row, side, offset, detail)]
        return []

    @staticmethod
    def _alarm(row: Mapping[str, Any], value: str, offset: float, detail: str) -> Row:
        return {
            "parameter": PARAMETER,
            "kind": Kind.ALARM,
            "value": value,
            "quality": Quality.GOOD,
            "source_time": row.get("source_time"),
            "server_time": row.get("server_time"),
            "gateway_time": row["gateway_time"],
            "clock_offset_s": offset,
            "detail": detail,
        }


def clock_monitors(site_clock: ClockConfig, equipment: EquipmentConfig) -> list[RecordMonitor]:
    """The clock-drift monitor an equipment gets: none when its limit (or the gateway's) is null."""
    config = site_clock.overridden(equipment.clock)
    return [] if config.max_offset_s is None else [ClockDriftMonitor(config)]


def _where(offset: float, *, device: bool = True) -> str:
    """``device clock 300.2 s ahead of the gateway`` (tenths: the exact offset is on the record)."""
    side = "ahead of" if offset > 0 else "behind"
    return f"{'device clock ' if device else ''}{abs(offset):.1f} s {side} the gateway"


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
