"""RawReading → engineering value with unit and quality, by the device map. Never clamps, never drops.

A value outside its valid range is kept as read and flagged Uncertain_EngineeringUnitsExceeded; an
unknown state code is kept as the code and flagged; a point the map does not know is journalled as
Bad_ConfigurationError under ``unmapped.<point>``. What the device said always reaches the journal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.points import DeviceMap, PointSpec
from gateway.records import Kind, Quality, RawReading, ReadingBatch


@dataclass(slots=True)
class Normalised:
    """One point's engineering value, before it becomes a record draft."""

    reading: RawReading
    spec: PointSpec | None
    value: bool | int | float | str | None
    quality: Quality
    detail: str | None

    @property
    def parameter(self) -> str:
        if self.spec is None:
            return f"unmapped.{self.reading.point}"
        return self.spec.parameter or self.reading.point

    @property
    def journalled(self) -> bool:
        """Internal points (parameter: null) feed derivations but are not records of their own."""
        return self.spec is None or self.spec.parameter is not None


def normalise_reading(reading: RawReading, spec: PointSpec | None) -> Normalised:
    """Scale, offset, state names and range check for one reading."""
    if spec is None:
        return Normalised(
            reading, None, _plain(reading.value), Quality.BAD_CONFIGURATION_ERROR,
            f"point {reading.point!r} is not in the device map",
        )
    raw, quality, detail = reading.value, reading.quality, reading.detail
    if raw is None or isinstance(raw, str):
        return Normalised(reading, spec, raw, quality, detail)
    if isinstance(raw, bool):
        return Normalised(reading, spec, raw, quality, detail)
    if spec.states is not None:
        name = spec.states.get(int(raw))
        if name is None:
            return Normalised(
                reading, spec, int(raw), quality.worst(Quality.UNCERTAIN),
                _join(detail, f"state code {raw} is not in the map"),
            )
        return Normalised(reading, spec, name, quality, detail)
    if isinstance(raw, float) and not math.isfinite(raw):
        return Normalised(
            reading, spec, None, Quality.BAD_DECODING_ERROR, _join(detail, f"device sent {raw} (not a number)")
        )
    value: int | float = raw
    if spec.scale != 1.0 or spec.offset != 0.0:
        value = raw * spec.scale + spec.offset
    if spec.valid_max is not None and value > spec.valid_max:
        quality = quality.worst(Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED)
        detail = _join(detail, f"{value:g} is above the valid maximum {spec.valid_max:g}")
    elif spec.valid_min is not None and value < spec.valid_min:
        quality = quality.worst(Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED)
        detail = _join(detail, f"{value:g} is below the valid minimum {spec.valid_min:g}")
    return Normalised(reading, spec, value, quality, detail)


def normalise_readings(readings: list[RawReading], device_map: DeviceMap) -> list[Normalised]:
    """Every reading of one device read, in order; a point may appear more than once (a queued burst)."""
    points = device_map.points
    return [normalise_reading(r, points.get(r.point)) for r in readings]


def normalise_batch(readings: list[RawReading], device_map: DeviceMap) -> dict[str, Normalised]:
    """The latest reading of each point of one device read, by point name (for derived values)."""
    return {n.reading.point: n for n in normalise_readings(readings, device_map)}


#: The exact types a record's value may have; anything else (a subclass, a numpy number) is left to
#: full validation, which decides.
_PLAIN_VALUES = frozenset({bool, int, float, str, type(None)})
_PLAIN_TEXT = frozenset({str, type(None)})


def plain_read(items: Sequence[Normalised], batch: ReadingBatch) -> bool:
    """Whether every device-given value of one read has the exact type the record contract takes.

    Then the records built from it need no per-record validation (see ``trusted_draft``): the
    check is one pass over the read; any other value sends the whole read through full validation.
    """
    if (
        type(batch.lot_id) not in _PLAIN_TEXT
        or type(batch.process_step) not in _PLAIN_TEXT
        or (batch.clock_offset_s is not None and type(batch.clock_offset_s) is not float)
    ):
        return False
    # The readings of one read share their times: each moment is checked when it first appears.
    gateway_time = source_time = server_time = None
    for item in items:
        r = item.reading
        if (
            type(item.value) not in _PLAIN_VALUES
            or type(item.quality) is not Quality
            or type(r.source) is not str
            or type(item.detail) not in _PLAIN_TEXT
            or type(r.result_key) not in _PLAIN_TEXT
            or type(r.corrects) not in _PLAIN_TEXT
        ):
            return False
        if r.gateway_time is not gateway_time:
            if not _aware(r.gateway_time):
                return False
            gateway_time = r.gateway_time
        if r.source_time is not source_time:
            if r.source_time is not None and not _aware(r.source_time):
                return False
            source_time = r.source_time
        if r.server_time is not server_time:
            if r.server_time is not None and not _aware(r.server_time):
                return False
            server_time = r.server_time
    return True


def _aware(moment: object) -> bool:
    return type(moment) is datetime and moment.utcoffset() is not None


def kind_of(item: Normalised) -> Kind:
    return item.spec.kind if item.spec is not None else Kind.MEASUREMENT


def _plain(value: object) -> bool | int | float | str | None:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second
