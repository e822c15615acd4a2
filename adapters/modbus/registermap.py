"""The register map file: a device's Modbus points and how to acquire its samples, as data.

A map extends the core's :class:`~gateway.points.DeviceMap` (what each point *means*) with where each
point *is* (table, 0-based protocol address, type, word order) and how the device delivers samples:

* ``live`` (MET ONE 6000): the sample sits in registers that the device overwrites; a batch is emitted
  when the sample key (its timestamp) changes, so one sample is journalled once however often we poll;
* ``latest_record`` (Lighthouse): a record buffer with a count and an index register selecting the
  record shown in the input registers; records missed during an outage are read back by index;
* ``queue`` (PMS AirNet II): a FIFO of sample packets; the oldest is shown until the host pops it,
  which the adapter does only after the journal has committed the packet.

Errors come out as ``FILE:LINE: path: message`` lines, one per problem, raised as ConfigError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator, model_validator

from adapters.modbus.decode import REGISTERS_PER_TYPE, PointType, WordOrder
from gateway.config import STRICT, load_yaml_model
from gateway.points import DeviceMap, PointSpec
from gateway.records import Quality

Table = Literal["holding", "input", "coil", "discrete"]
BIT_TABLES = ("coil", "discrete")
#: Largest read a Modbus request may ask for (FC03/04 registers, FC01/02 bits).
MAX_REGISTERS = 125
MAX_BITS = 2000


class ModbusPoint(PointSpec):
    """One point: its meaning (from PointSpec) and where it sits on the wire."""

    table: Table = Field(description="holding (FC03), input (FC04), coil (FC01) or discrete (FC02)")
    address: int = Field(ge=0, le=65535, description="0-based protocol address (documentation 40025 → 24)")
    type: PointType = Field(default="uint16", description="how the registers decode; bool for coils/discretes")
    count: int | None = Field(
        default=None, ge=1, le=MAX_REGISTERS, description="registers of a string (2 chars each) or bits (1 or 2)"
    )
    word_order: WordOrder | None = Field(
        default=None, description="32-bit word order; default: the map's word_order (float_word_order for floats)"
    )
    bit: int | None = Field(default=None, ge=0, le=15, description="for bool or a bit field: the bit of the register")
    width: int | None = Field(default=None, ge=1, le=16, description="bits of a bit field starting at `bit`")
    invert: bool = Field(default=False, description="bool only: an active-low bit (e.g. 'laser good' → laser_alert)")

    @model_validator(mode="after")
    def _wire_is_consistent(self) -> ModbusPoint:
        if self.table in BIT_TABLES:
            if self.type != "bool":
                raise ValueError(f"a {self.table} is one bit: its type must be bool, not {self.type}")
            if self.bit is not None or self.width is not None or self.count is not None:
                raise ValueError(f"a {self.table} takes no bit, width or count")
            return self
        if self.type == "bool" and self.bit is None:
            raise ValueError("a bool in a register needs `bit` (which bit of the register)")
        if self.width is not None and (self.type != "uint16" or self.bit is None):
            raise ValueError("`width` makes a bit field: it needs type uint16 and `bit`")
        if self.bit is not None and self.type not in ("bool", "uint16"):
            raise ValueError(f"`bit` applies to bool or a uint16 bit field, not {self.type}")
        if self.bit is not None and self.bit + (self.width or 1) > 16:
            raise ValueError(f"bits {self.bit}..{self.bit + (self.width or 1) - 1} do not fit a 16-bit register")
        if self.type == "string" and self.count is None:
            raise ValueError("a string needs `count` (registers, two characters each)")
        if self.type == "bits" and self.count not in (None, 1, 2):
            raise ValueError("bits spans 1 or 2 registers")
        if self.count is not None and self.type not in ("string", "bits"):
            raise ValueError(f"`count` applies to string or bits, not {self.type}")
        if self.word_order is not None and self.span < 2:
            raise ValueError("`word_order` applies to 32-bit values only")
        if self.invert and self.type != "bool":
            raise ValueError("`invert` applies to bool points only")
        if self.address + self.span > 65536:
            raise ValueError(f"address {self.address} + {self.span} registers runs past 65535")
        return self

    @property
    def span(self) -> int:
        """Registers (or bits, for coil and discrete tables) the point occupies."""
        if self.table in BIT_TABLES:
            return 1
        if self.type in ("string", "bits"):
            return self.count or 1
        return REGISTERS_PER_TYPE[self.type]


class SourceTime(BaseModel):
    """Which point carries the device's own sample time."""

    model_config = STRICT

    point: str = Field(description="point holding the sample timestamp")
    epoch: Literal["unix"] = Field(default="unix", description="unix: seconds since 1970-01-01 UTC")


def _lowers(value: Quality) -> Quality:
    if value.is_good:
        raise ValueError("an alarm or unmet expectation must lower the quality: give an Uncertain_ or Bad_ code")
    return value


#: A quality that says something is wrong: Good here would hide the alarm it stands for.
LoweredQuality = Annotated[Quality, AfterValidator(_lowers)]


class StatusBit(BaseModel):
    """One bit of a status word and the quality its alarm state gives the points it concerns."""

    model_config = STRICT

    bit: int = Field(ge=0, le=31)
    label: str = Field(description="what the bit says, in the device manual's words")
    quality: LoweredQuality = Field(description="quality of the named points while the bit is in its alarm state")
    points: list[str] = Field(default_factory=list, description="points whose quality the alarm lowers")


class StatusSpec(BaseModel):
    """A status word. The status point's own quality becomes the worst of its active alarms."""

    model_config = STRICT

    point: str = Field(description="the point holding the status word")
    polarity: Literal["active_alarm", "active_good"] = Field(
        description="active_alarm: a set bit is the alarm (Lighthouse); active_good: a cleared bit is (PMS)"
    )
    bits: list[StatusBit] = Field(min_length=1)


class Expectation(BaseModel):
    """A setting the map's meaning depends on, e.g. "count mode = cumulative" or "raw counts, not
    concentrations". While the device says otherwise, the named points carry the given quality."""

    model_config = STRICT

    point: str = Field(description="the point holding the setting")
    value: int = Field(description="the value the map assumes")
    label: str = Field(description="what the map assumes, in words")
    quality: LoweredQuality = Field(default=Quality.BAD_CONFIGURATION_ERROR)
    points: list[str] = Field(min_length=1, description="points whose meaning depends on the setting")


class OnConnectWrite(BaseModel):
    """A command written at connect. The gateway is read-only unless a map says otherwise, and why."""

    model_config = STRICT

    point: str = Field(description="a holding register or coil point")
    value: int = Field(description="register value (0..65535; -1 is written as 0xFFFF) or coil 0/1")
    why: str = Field(min_length=1, description="the reason, for the reviewer of a GMP system that writes")


class _Acquisition(BaseModel):
    model_config = STRICT

    on_connect_writes: list[OnConnectWrite] = Field(default_factory=list)


class LiveAcquisition(_Acquisition):
    """Read every point each poll; emit only when the sample key changes."""

    mode: Literal["live"] = "live"
    sample_key: list[str] = Field(
        default_factory=list, description="points whose change marks a new sample; empty: every poll is a sample"
    )


class LatestRecordAcquisition(_Acquisition):
    """A record buffer read through an index register (Lighthouse)."""

    mode: Literal["latest_record"]
    record_table: Table = Field(default="input", description="the table showing the selected record")
    status_point: str = Field(description="device status word, read each poll")
    new_data_bit: int = Field(ge=0, le=15, description="status bit set while an unread record is waiting")
    record_count_point: str = Field(description="number of records in the device buffer")
    record_index_point: str = Field(
        description="holding register selecting the record shown; the adapter writes -1 (latest) at connect"
    )
    max_catch_up: int = Field(default=100, ge=1, le=10_000, description="missed records read back per poll, at most")


class QueueAcquisition(_Acquisition):
    """A FIFO of packets popped by the host (PMS AirNet II)."""

    mode: Literal["queue"]
    record_table: Table = Field(default="input", description="the table showing the oldest queued packet")
    available_point: str = Field(description="coil that reads 1 while a packet is queued; writing 0 pops it")
    max_per_poll: int = Field(default=100, ge=1, le=10_000, description="packets drained per poll, at most")


Acquisition = Annotated[LiveAcquisition | LatestRecordAcquisition | QueueAcquisition, Field(discriminator="mode")]


class RegisterMap(DeviceMap):
    """A Modbus device's map. Every reference to a point is checked at load."""

    points: dict[str, ModbusPoint]  # type: ignore[assignment]
    word_order: WordOrder = Field(default="big", description="word order of 32-bit integers (big: high word first)")
    float_word_order: WordOrder | None = Field(default=None, description="word order of floats; default word_order")
    max_gap_registers: int = Field(
        default=16, ge=0, le=MAX_REGISTERS, description="unmapped registers a block may span to save a request"
    )
    max_gap_bits: int = Field(default=64, ge=0, le=MAX_BITS)
    source_time: SourceTime | None = None
    status: list[StatusSpec] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    acquisition: Acquisition = Field(default_factory=LiveAcquisition)

    @field_validator("source_time")
    @classmethod
    def _source_time_ok(cls, value: SourceTime | None, info: ValidationInfo) -> SourceTime | None:
        points = info.data.get("points")
        if value is not None and points is not None:
            p = _known(points, value.point, "source_time.point")
            if p.type not in ("uint16", "uint32", "int32"):
                raise ValueError(f"source_time point {p.name!r} is {p.type}: give an integer of Unix seconds")
        return value

    @field_validator("status")
    @classmethod
    def _status_ok(cls, value: list[StatusSpec], info: ValidationInfo) -> list[StatusSpec]:
        points = info.data.get("points")
        if points is None:
            return value
        for spec in value:
            p = _known(points, spec.point, "status.point")
            if p.type not in ("bits", "uint16", "uint32") or p.bit is not None:
                raise ValueError(f"status point {p.name!r} must be a whole bits/uint16/uint32 word, not {p.type}")
            for b in spec.bits:
                if b.bit >= 16 * p.span:
                    raise ValueError(f"status bit {b.bit} is outside {p.name!r} ({16 * p.span} bits)")
                for name in b.points:
                    _known(points, name, f"status bit {b.bit} points")
        return value

    @field_validator("expect")
    @classmethod
    def _expect_ok(cls, value: list[Expectation], info: ValidationInfo) -> list[Expectation]:
        points = info.data.get("points")
        if points is None:
            return value
        for e in value:
            p = _known(points, e.point, "expect.point")
            if p.type in ("string", "float32"):
                raise ValueError(f"expect compares integers; {p.name!r} is {p.type}")
            for name in e.points:
                _known(points, name, "expect.points")
        return value

    @field_validator("acquisition")
    @classmethod
    def _acquisition_ok(cls, value: Any, info: ValidationInfo) -> Any:
        points = info.data.get("points")
        if points is None:
            return value
        for w in value.on_connect_writes:
            p = _known(points, w.point, "on_connect_writes.point")
            _check_writable(p, w.value)
        if isinstance(value, LiveAcquisition):
            for name in value.sample_key:
                _known(points, name, "sample_key")
        elif isinstance(value, LatestRecordAcquisition):
            status = _known(points, value.status_point, "status_point")
            count = _known(points, value.record_count_point, "record_count_point")
            index = _known(points, value.record_index_point, "record_index_point")
            for p in (status, count, index):
                if p.table == value.record_table:
                    raise ValueError(f"{p.name!r} is a control point: it must not be in the record table")
            if index.table != "holding" or index.type not in ("int16", "uint16"):
                raise ValueError(f"record_index_point {index.name!r} must be a 16-bit holding register")
            if status.type not in ("bits", "uint16") or status.bit is not None or count.type not in (
                "uint16", "uint32"
            ):
                raise ValueError("status_point must be a 16-bit word and record_count_point an unsigned integer")
        else:
            avail = _known(points, value.available_point, "available_point")
            if avail.table != "coil":
                raise ValueError(f"available_point {avail.name!r} must be a coil (written 0 to pop)")
        return value


def _known(points: dict[str, ModbusPoint], name: str, where: str) -> ModbusPoint:
    if name not in points:
        raise ValueError(f"{where}: {name!r} is not a point of this map")
    return points[name]


def _check_writable(point: ModbusPoint, value: int) -> None:
    if point.table == "coil":
        if value not in (0, 1):
            raise ValueError(f"coil {point.name!r} takes 0 or 1, not {value}")
    elif point.table == "holding" and point.span == 1 and point.bit is None:
        if not -0x8000 <= value <= 0xFFFF:
            raise ValueError(f"{value} does not fit the 16-bit register {point.name!r}")
    else:
        raise ValueError(f"{point.name!r} cannot be written: give a coil or a whole 16-bit holding register")


def load_register_map(path: Path) -> RegisterMap:
    """Load and check one map file; ConfigError lists every problem as ``FILE:LINE: path: message``."""
    return load_yaml_model(path, RegisterMap, shape="a register map is a mapping with name:, points: ...")
