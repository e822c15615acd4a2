"""The three counter register layouts, by the name used in configuration (`profile: lighthouse`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .airnet2 import AirNet2Device
from .base import CounterDevice, Span, Table
from .lighthouse import LighthouseDevice
from .metone6000 import MetOne6000Device

#: Read-only: profiles are fixed at import time, never registered at run time.
PROFILES: Mapping[str, type[CounterDevice]] = MappingProxyType(
    {cls.profile: cls for cls in (LighthouseDevice, MetOne6000Device, AirNet2Device)}
)
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def device_class(profile: str) -> type[CounterDevice]:
    """The device class for a profile name; ValueError names the valid ones."""
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILE_NAMES)}") from None


__all__ = ["PROFILES", "PROFILE_NAMES", "CounterDevice", "Span", "Table", "device_class"]
