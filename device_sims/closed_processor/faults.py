"""The faults a closed-processor simulator can play, and their parameters with defaults.

Process faults (temperature excursion, door, pressure) act on the model; link and address-space faults
(restart, stall, freeze, bad status, deleted node, clock skew, new certificate) act on the server and are kept in
`LinkFaults`, which the publishing loop reconciles with the address space on every tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from asyncua import ua

from .nodes import FUNCTIONS, function_value_path


class Fault(StrEnum):
    RESTART = "restart"
    STALL = "stall"
    FREEZE = "freeze"
    BAD_STATUS = "bad_status"
    DELETE_NODE = "delete_node"
    CLOCK_SKEW = "clock_skew"
    CERTIFICATE_CHANGE = "certificate_change"
    TEMPERATURE_EXCURSION = "temperature_excursion"
    DOOR_OPEN = "door_open"
    PRESSURE_HIGH = "pressure_high"


_DEFAULTS: Mapping[Fault, Mapping[str, Any]] = {
    Fault.BAD_STATUS: {"nodes": "Temperature", "status": "BadSensorFailure"},
    Fault.DELETE_NODE: {"function": "Temperature"},
    Fault.CLOCK_SKEW: {"seconds": 0.0},
    Fault.TEMPERATURE_EXCURSION: {"duration_s": 1800.0, "delta_c": 2.0},
}


def parse_fault(name: str) -> Fault:
    try:
        return Fault(name)
    except ValueError:
        valid = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {name!r}; valid faults: {valid}") from None


def fault_params(kind: Fault, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with defaults filled in; an unknown parameter is an error, not ignored."""
    allowed = _DEFAULTS.get(kind, {})
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(f"fault {kind.value!r} takes {sorted(allowed) or 'no parameters'}, not {sorted(unknown)}")
    return {**allowed, **params}


def value_paths(nodes: str | list[str]) -> list[str]:
    """Function names (`Temperature`) or full paths below the device, comma-separated or as a list."""
    names = [n.strip() for n in nodes.split(",")] if isinstance(nodes, str) else list(nodes)
    return [function_value_path(n) if n in FUNCTIONS or n == "DoorOpen" else n for n in names if n]


def status_code(name: str | int) -> int:
    if isinstance(name, int):
        return name
    try:
        return int(getattr(ua.StatusCodes, name))
    except AttributeError:
        raise ValueError(f"unknown OPC UA status code {name!r}") from None


@dataclass
class LinkFaults:
    """Server-side faults; the publisher applies them, `restore()` lifts them all."""

    stall: bool = False
    freeze: bool = False
    bad_status: dict[str, int] = field(default_factory=dict)  # path -> StatusCode value
    deleted: set[str] = field(default_factory=set)  # paths that must not exist in the address space
    clock_skew_s: float = 0.0
    new_certificate: bool = False

    def active(self) -> tuple[str, ...]:
        names = []
        if self.stall:
            names.append(Fault.STALL.value)
        if self.freeze:
            names.append(Fault.FREEZE.value)
        if self.bad_status:
            names.append(Fault.BAD_STATUS.value)
        if self.deleted:
            names.append(Fault.DELETE_NODE.value)
        if self.clock_skew_s:
            names.append(Fault.CLOCK_SKEW.value)
        if self.new_certificate:
            names.append(Fault.CERTIFICATE_CHANGE.value)
        return tuple(names)
