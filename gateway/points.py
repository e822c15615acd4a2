"""What a device's points mean: the protocol-free half of a register map or tag map.

Every adapter's map entry extends :class:`PointSpec` with its own wire fields (a Modbus table and
address, an OPC UA node id); the core reads only the fields defined here to turn a RawReading into a
record. Keeping meaning apart from wiring lets one normaliser serve every protocol.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.records import Kind

_STRICT = ConfigDict(extra="forbid", frozen=True)


class PointSpec(BaseModel):
    """The canonical meaning of one device point."""

    model_config = _STRICT

    name: str = Field(description="key of the point in its map, unique per map")
    parameter: str | None = Field(
        default=None,
        description="canonical parameter name in records; None keeps the point internal (read, not journalled)",
    )
    kind: Kind = Kind.MEASUREMENT
    unit: str | None = Field(default=None, description="UCUM code of the value after scale and offset")
    scale: float = Field(default=1.0, description="engineering value = raw * scale + offset")
    offset: float = 0.0
    valid_min: float | None = Field(default=None, description="below this the value is kept but flagged")
    valid_max: float | None = Field(default=None, description="above this the value is kept but flagged")
    states: dict[int, str] | None = Field(
        default=None, description="for kind=state: device code -> state name; an unknown code is flagged"
    )
    description: str = ""

    @model_validator(mode="after")
    def _range_is_ordered(self) -> PointSpec:
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise ValueError(f"valid_min {self.valid_min} is above valid_max {self.valid_max}")
        return self


class VolumeSpec(BaseModel):
    """How a counter's sampled air volume is known: a volume point, or flow × sample duration."""

    model_config = _STRICT

    volume_point: str | None = Field(default=None, description="point holding the sampled volume")
    volume_unit: Literal["m3", "L", "[ft_i]3"] = "m3"
    flow_point: str | None = Field(default=None, description="point holding the flow rate")
    flow_unit: Literal["m3/min", "L/min", "[ft_i]3/min"] = "L/min"
    duration_point: str | None = Field(default=None, description="point holding the sample duration")
    duration_unit: Literal["s", "min"] = "s"

    @model_validator(mode="after")
    def _one_way(self) -> VolumeSpec:
        by_volume = self.volume_point is not None
        by_flow = self.flow_point is not None and self.duration_point is not None
        if by_volume == by_flow:
            raise ValueError("give either volume_point, or flow_point and duration_point")
        return self


class ParticleChannel(BaseModel):
    model_config = _STRICT

    point: str
    size_um: float = Field(gt=0)


class ParticleCounterSpec(BaseModel):
    """What makes a map a particle counter: which points are counts of which size, and the volume."""

    model_config = _STRICT

    count_mode: Literal["cumulative", "differential"] = Field(
        default="cumulative", description="cumulative: channel k counts particles >= size k"
    )
    channels: list[ParticleChannel] = Field(min_length=1)
    volume: VolumeSpec
    status_point: str | None = Field(default=None, description="point whose quality gates the sample")


class DeviceMap(BaseModel):
    """A device's points as the core sees them, whatever protocol delivers them."""

    model_config = _STRICT

    name: str
    description: str = ""
    points: dict[str, PointSpec]
    particle_counter: ParticleCounterSpec | None = None

    @field_validator("points", mode="before")
    @classmethod
    def _names_from_keys(cls, value: Any) -> Any:
        """In a map file the key is the point's name; a ``name:`` that disagrees is an error."""
        if not isinstance(value, dict):
            return value
        named = {}
        for key, point in value.items():
            if isinstance(point, dict):
                if "name" in point and point["name"] != key:
                    raise ValueError(f"point {key!r} says name {point['name']!r}: the key is the name")
                point = {"name": key, **point}
            named[key] = point
        return named

    @model_validator(mode="after")
    def _references_exist(self) -> DeviceMap:
        pc = self.particle_counter
        if pc is None:
            return self
        refs = [c.point for c in pc.channels]
        refs += [p for p in (pc.volume.volume_point, pc.volume.flow_point, pc.volume.duration_point) if p]
        refs += [pc.status_point] if pc.status_point else []
        missing = [r for r in refs if r not in self.points]
        if missing:
            raise ValueError(f"particle_counter names points the map does not define: {', '.join(missing)}")
        return self
