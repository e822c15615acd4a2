"""The records and device states a step or criterion of an OQ protocol is about, and the strict base every
protocol model shares (unknown keys refused, frozen)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """A protocol model: a key it does not know is an error with its line, and it never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordFilter(Strict):
    """Which journal records a condition or criterion is about (every field optional, all must match)."""

    equipment: str | None = None
    parameter: str | None = None
    kind: str | None = None
    value: Any = None
    #: The UCUM unit exactly (``Cel``, ``/m3``).
    unit: str | None = None
    quality: str | None = Field(default=None, description="exact quality name, or Good/Uncertain/Bad for a class")
    #: The lot context: a lot id, or ``""`` for a record that carries no lot.
    lot: str | None = None
    coi: str | None = None
    #: Text the record's detail must contain.
    detail: str | None = None
    #: True: the record keeps the raw bytes it came from (False: it keeps none).
    raw: bool | None = None
    #: The device result the record is a version of (an ASTM result's ``equipment/specimen/bottle/test``).
    result_key: str | None = None
    #: True: a correction (it carries ``corrects``); False: not one (an original or a repeat).
    correction: bool | None = None
    #: The ``corrects`` link exactly: a raw_sha256, or ``unknown`` for an original this gateway never saw.
    corrects: str | None = None
    #: The record's ``clock_offset_s`` at least / at most this (a record without one matches neither).
    clock_offset_min_s: float | None = None
    clock_offset_max_s: float | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.equipment is not None and record.get("equipment_id") != self.equipment:
            return False
        if self.parameter is not None and record.get("parameter") != self.parameter:
            return False
        if self.kind is not None and record.get("kind") != self.kind:
            return False
        if self.value is not None and record.get("value") != self.value:
            return False
        if self.unit is not None and record.get("unit") != self.unit:
            return False
        if self.lot is not None and (record.get("lot_id") or "") != self.lot:
            return False
        if self.coi is not None and record.get("coi_id") != self.coi:
            return False
        if self.detail is not None and self.detail not in (record.get("detail") or ""):
            return False
        if self.raw is not None and bool(record.get("raw_bytes")) != self.raw:
            return False
        if self.result_key is not None and record.get("result_key") != self.result_key:
            return False
        if self.correction is not None and (record.get("corrects") is not None) != self.correction:
            return False
        if self.corrects is not None and record.get("corrects") != self.corrects:
            return False
        if not self._offset_within(record.get("clock_offset_s")):
            return False
        if self.quality is not None:
            quality = str(record.get("quality", ""))
            if "_" in self.quality or self.quality not in ("Good", "Uncertain", "Bad"):
                return quality == self.quality
            return quality.split("_", 1)[0] == self.quality
        return True

    def _offset_within(self, offset: Any) -> bool:
        if self.clock_offset_min_s is None and self.clock_offset_max_s is None:
            return True
        if not isinstance(offset, int | float):
            return False
        return ((self.clock_offset_min_s is None or offset >= self.clock_offset_min_s)
                and (self.clock_offset_max_s is None or offset <= self.clock_offset_max_s))


class CountedRecords(RecordFilter):
    """Records matching the filter: exactly ``count``, or at least ``min_count``."""

    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> CountedRecords:
        if (self.count is None) == (self.min_count is None):
            raise ValueError("give exactly one of count or min_count")
        return self


class SimStateCheck(Strict):
    """A number in a simulator's ``state()`` snapshot: at least ``min``, or exactly ``equals``."""

    sim: str
    field: str
    min: float | None = None
    equals: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> SimStateCheck:
        if (self.min is None) == (self.equals is None):
            raise ValueError("give exactly one of min or equals")
        return self

    def holds(self, value: float) -> bool:
        return value >= self.min if self.min is not None else value == self.equals

    def describe(self) -> str:
        bound = f">= {self.min:g}" if self.min is not None else f"= {self.equals:g}"
        return f"{self.sim} state {self.field} {bound}"
