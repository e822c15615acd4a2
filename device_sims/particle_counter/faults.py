"""The faults a simulated counter can show on demand, and the state each one leaves behind.

Faults fall in two scopes, because that is how they happen on a real site:

* unit faults belong to one counter on the line (an excursion in its room, its laser failing, its
  clock drifting); `unit_id=None` applies them to every counter the simulator serves;
* link faults belong to the wire (a pulled cable, a hung converter, line noise) and hit every unit.

`stall` and `illegal_address` can be either: one counter going quiet on a shared RS-485 line is a
different test from the whole line going quiet.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU

from .registers import U32_MAX


class Fault(enum.StrEnum):
    """Names accepted by `ParticleCounterSim.inject` and `.clear`."""

    EXCURSION = "excursion"
    FLOW_ALERT = "flow_alert"
    LASER_ALERT = "laser_alert"
    CALIBRATION_OVERDUE = "calibration_overdue"
    FROZEN = "frozen"
    CLOCK_SKEW = "clock_skew"
    RESTART = "restart"
    STALL = "stall"
    ILLEGAL_ADDRESS = "illegal_address"
    GARBAGE = "garbage"
    DISCONNECT = "disconnect"
    #: The next samples carry exactly these counts (one value per sample, on every channel): a known input
    #: for end-to-end accuracy checks (0, 1, 65 535, 65 536, 4 294 967 295 cross the 16-bit word boundary).
    SCRIPTED_COUNTS = "scripted_counts"


#: Faults that act on the link and cannot be aimed at one unit.
LINK_ONLY: frozenset[Fault] = frozenset({Fault.GARBAGE, Fault.DISCONNECT})
#: Faults that may be aimed at one unit or, with unit_id=None, at the whole link.
EITHER_SCOPE: frozenset[Fault] = frozenset({Fault.STALL, Fault.ILLEGAL_ADDRESS})
#: Faults that are events, not conditions: they happen once and have nothing to clear.
ONE_SHOT: frozenset[Fault] = frozenset({Fault.RESTART})

#: The parameters each fault accepts, with their defaults (read-only: a default is not a setting).
PARAMS: Mapping[Fault, Mapping[str, float]] = MappingProxyType(
    {
        Fault.EXCURSION: MappingProxyType({"samples": 1, "factor": 3.0}),
        Fault.FLOW_ALERT: MappingProxyType({"flow_fraction": 0.85}),
        Fault.CLOCK_SKEW: MappingProxyType({"seconds": 300.0}),
        Fault.CALIBRATION_OVERDUE: MappingProxyType({"days": 30.0}),
    }
)


def parse_fault(name: str) -> Fault:
    """The Fault for a name, or ValueError listing the valid ones."""
    try:
        return Fault(name)
    except ValueError:
        valid = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {name!r}; valid faults: {valid}") from None


def scripted_values(given: Mapping[str, object]) -> list[int]:
    """The ``values`` of a scripted_counts fault: whole counts within 0..2**32-1, or ValueError/TypeError."""
    if set(given) != {"values"}:
        raise TypeError(f"fault 'scripted_counts' takes exactly one parameter, values; got {sorted(given)}")
    values = given["values"]
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ValueError("scripted_counts values must be a non-empty list of counts")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= U32_MAX:
            raise ValueError(f"scripted_counts values must be whole counts within 0..{U32_MAX}, got {v!r}")
    return list(values)


def fault_params(fault: Fault, given: dict[str, float]) -> dict[str, float]:
    """The fault's parameters with defaults filled in; unknown names raise TypeError, bad values ValueError."""
    allowed = PARAMS.get(fault, MappingProxyType({}))
    unknown = set(given) - set(allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise TypeError(f"fault {fault.value!r} got unknown parameter(s) {sorted(unknown)}; accepted: {accepted}")
    params = {**allowed, **given}
    if fault is Fault.EXCURSION:
        if int(params["samples"]) != params["samples"] or params["samples"] < 1:
            raise ValueError(f"excursion samples must be a whole number >= 1, got {params['samples']}")
        if params["factor"] <= 1.0:
            raise ValueError(f"excursion factor must be > 1 (times the grade limit), got {params['factor']}")
    if fault is Fault.FLOW_ALERT and not 0.0 <= params["flow_fraction"] <= 2.0:
        raise ValueError(f"flow_fraction must be within 0..2 of nominal flow, got {params['flow_fraction']}")
    return params


@dataclass
class UnitFaults:
    """Active faults of one counter. Mutable on purpose: the model reads it on every sample."""

    excursion_samples_left: int = 0
    excursion_factor: float = 3.0
    flow_fraction: float | None = None
    laser_alert: bool = False
    calibration_overdue_days: float | None = None
    frozen: bool = False
    clock_skew_s: float = 0.0
    stall: bool = False
    illegal_address: bool = False
    #: Counts the next samples carry, oldest first (scripted_counts); consumed one per sample.
    scripted_counts: list[int] = field(default_factory=list)

    def active(self) -> frozenset[str]:
        """Names of the faults currently in effect, for `CounterState.faults_active`."""
        flags = {
            Fault.EXCURSION: self.excursion_samples_left > 0,
            Fault.FLOW_ALERT: self.flow_fraction is not None,
            Fault.LASER_ALERT: self.laser_alert,
            Fault.CALIBRATION_OVERDUE: self.calibration_overdue_days is not None,
            Fault.FROZEN: self.frozen,
            Fault.CLOCK_SKEW: self.clock_skew_s != 0.0,
            Fault.STALL: self.stall,
            Fault.ILLEGAL_ADDRESS: self.illegal_address,
            Fault.SCRIPTED_COUNTS: bool(self.scripted_counts),
        }
        return frozenset(f.value for f, on in flags.items() if on)


@dataclass
class LinkFaults:
    """Faults of the wire shared by every unit of one simulator."""

    disconnected: bool = False
    stall: bool = False
    garbage: bool = False
    illegal_address: bool = False

    def active(self) -> frozenset[str]:
        """Names of the link faults in effect."""
        flags = {
            Fault.DISCONNECT: self.disconnected,
            Fault.STALL: self.stall,
            Fault.GARBAGE: self.garbage,
            Fault.ILLEGAL_ADDRESS: self.illegal_address,
        }
        return frozenset(f.value for f, on in flags.items() if on)


def garbage_frame(rng: random.Random, rtu: bool) -> bytes:
    """Random bytes that a Modbus client cannot decode as a frame of the given framing.

    Each candidate is checked with pymodbus's own client-side framer, so "garbage" never happens to be a
    valid answer by chance (an RTU CRC match is 1 in 65 536 per offset; cheap to rule out).
    """
    framer = FramerRTU(DecodePDU(False)) if rtu else FramerSocket(DecodePDU(False))
    while True:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(5, 24)))
        try:
            _used, pdu = framer.handleFrame(data, 0, 0)
        except ModbusIOException:
            pdu = None
        if pdu is None:
            return data
