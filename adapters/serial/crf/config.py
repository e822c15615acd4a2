"""The ``kind: crf`` equipment entry: the serial line, the approved profiles, the timers. Pydantic only.

The approved profiles and the point map are loaded when the entry is validated, so a wrong profile
file is a located error at ``check-config``, not a surprise at the first run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from adapters.serial.crf.translate import POINTS
from adapters.serial.transport import SerialLineConfig
from gateway.config import EquipmentConfig, data_file_path, load_yaml_model
from gateway.errors import ConfigError
from gateway.freezing import FreezingProfile, load_profile, profile_path
from gateway.points import DeviceMap

T = TypeVar("T")

#: The point map shipped with the adapter (the protocol fixes the point names).
SHIPPED_MAP = Path(__file__).with_name("crf-line.yaml")


class CrfEquipmentConfig(EquipmentConfig, SerialLineConfig):
    """A controlled-rate freezer on a serial line (a device path or a ``socket://`` device server)."""

    kind: Literal["crf"] = Field(description="this entry is read by the controlled-rate freezer adapter")
    approved_profiles: list[str] = Field(
        default_factory=list,
        description="approved profiles by name (config/freezing-profiles/<name>.yaml) or file; empty: no "
        "conformance check, and every loaded profile is reported as not approved",
    )
    point_map: str | None = Field(
        default=None, description="a point map file relative to this file; default: the protocol's own map"
    )
    reply_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="seconds to wait for the answers to ID?, PRF? and RUN? at connect"
    )
    silence_timeout_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="no line for this long means the link (or the freezer) is down; set above the sampling interval",
    )

    _profiles: dict[str, FreezingProfile] = PrivateAttr(default_factory=dict)
    _map: DeviceMap | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _no_poll_interval(cls, data: object) -> object:
        if isinstance(data, dict) and "poll_interval_s" in data:
            raise ValueError(
                "poll_interval_s does not apply: the freezer streams a line per sampling interval (set on the "
                "freezer); silence_timeout_s says how long a silence may last"
            )
        return data

    @field_validator("approved_profiles")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a profile is listed twice")
        return value

    @model_validator(mode="after")
    def _load_files(self, info: ValidationInfo) -> CrfEquipmentConfig:
        profiles: dict[str, FreezingProfile] = {}
        for ref in self.approved_profiles:
            path = profile_path(ref, info.context)
            if not path.is_file():
                raise ValueError(f"approved profile {ref!r} not found (looked for {path})")
            profile = _load(lambda p=path: load_profile(p))
            if profile.name in profiles:
                raise ValueError(f"two approved profiles are both named {profile.name!r}")
            profiles[profile.name] = profile
        self._profiles = profiles
        map_path = SHIPPED_MAP if self.point_map is None else data_file_path(self.point_map, info.context, "crf")
        if not map_path.is_file():
            raise ValueError(f"point map {self.point_map!r} not found (looked for {map_path})")
        device_map = _load(lambda: load_yaml_model(map_path, DeviceMap, shape="a point map has name: and points:"))
        missing = sorted(POINTS - set(device_map.points))
        if missing:
            raise ValueError(f"point map {map_path} lacks points the protocol delivers: {', '.join(missing)}")
        self._map = device_map
        return self

    @property
    def profiles(self) -> dict[str, FreezingProfile]:
        """The approved profiles by the name the freezer reports."""
        return dict(self._profiles)

    @property
    def device_map(self) -> DeviceMap:
        assert self._map is not None
        return self._map

    @property
    def source_base(self) -> str:
        """The start of every reading's source URI: ``crf+serial://<path>`` or ``crf+socket://host:port``."""
        if self.port.startswith("socket://"):
            return "crf+" + self.port
        return f"crf+serial://{self.port}"


def _load(load: Callable[[], T]) -> T:
    """Run a loader; a located ConfigError from a data file becomes one validation message."""
    try:
        return load()
    except ConfigError as exc:
        raise ValueError("; ".join(exc.problems)) from None
