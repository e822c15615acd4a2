"""The simulated DAQ's SCPI side: parse a command line, answer it, keep the error queue. No I/O.

Written from SCPI-99 and IEEE 488.2 independently of the gateway's parser, so a disagreement between
the two shows up as a failing test. What it understands (short or long forms, any case)::

    *IDN?  *RST  *CLS  *OPC?
    MEASure:TEMPerature? [TC|THER|RTD|FRTD|DEF[,<type>]][,(@101:104)]   one value per channel
    ROUTe:SCAN (@101,103)   ROUTe:SCAN?   READ?                          read the scan list
    UNIT:TEMPerature C|F|K[,(@...)]   UNIT:TEMPerature?
    SYSTem:ERRor[:NEXT]?                                                 pops the oldest error
    SYSTem:DATE?  SYSTem:TIME?                       the clock's local date and time (SCPI-99: no zone)

Several commands may share a line separated by ``;``; their replies are joined with ``;``. An unknown
header or a bad parameter queues an error and sends no reply, as a real instrument does (so the client
times out and reads the error queue).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

QUEUE_DEPTH = 20
OVERLOAD = "+9.90000000E+37"
_LONG_TO_SHORT = {
    "MEASURE": "MEAS", "TEMPERATURE": "TEMP", "ROUTE": "ROUT", "SYSTEM": "SYST", "ERROR": "ERR",
    "CONFIGURE": "CONF", "NEXT": "NEXT", "SCAN": "SCAN", "UNIT": "UNIT", "READ": "READ",
}
_CHANNEL_LIST = re.compile(r"\(@([^)]*)\)")
_PROBES = {"TC", "THER", "RTD", "FRTD", "DEF"}
_UNITS = ("C", "F", "K")


class ScpiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code},{message}")
        self.code, self.message = code, message


@dataclass
class Identity:
    manufacturer: str = "CGT Simulated Instruments"
    model: str = "DAQ-4TC"
    serial: str = "SIM000001"
    firmware: str = "1.0.0"

    def reply(self) -> str:
        return f"{self.manufacturer},{self.model},{self.serial},{self.firmware}"


@dataclass
class InstrumentFaults:
    """What the instrument does wrong right now (set by the simulator's ``inject``)."""

    silent: bool = False
    wrong_identity: bool = False
    garbage: bool = False
    overload: set[int] = field(default_factory=set)


class ScpiInstrument:
    """The command interpreter of one DAQ. ``measure(channels) -> °C`` comes from the thermal model;
    ``clock() -> local wall time`` (naive, as an instrument's clock shows it) from the simulator, and
    without one SYST:DATE? and SYST:TIME? are undefined headers (an instrument with no clock)."""

    def __init__(
        self,
        identity: Identity,
        channels: Sequence[int],
        measure: Callable[[list[int]], list[float]],
        clock: Callable[[], datetime] | None = None,
    ):
        self.identity = identity
        self.channels = tuple(channels)
        self.measure = measure
        self.clock = clock
        self.faults = InstrumentFaults()
        self.errors: deque[tuple[int, str]] = deque()
        self.scan_list: list[int] = []
        self.unit = "C"
        self.commands = 0
        self.identity_queries = 0

    # -- the error queue -------------------------------------------------------------------------
    def push_error(self, code: int, message: str) -> None:
        """Queue an error; a full queue keeps its oldest entries and ends with -350 (IEEE 488.2)."""
        if len(self.errors) >= QUEUE_DEPTH:
            self.errors[-1] = (-350, "Queue overflow")
            return
        self.errors.append((code, message))

    def reset(self) -> None:
        """*RST: default settings (the error queue is not cleared by *RST)."""
        self.scan_list, self.unit = [], "C"

    # -- one line in, reply lines out ----------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """The reply to one line, or None when it has none (commands, errors, a silent instrument)."""
        if self.faults.silent:
            return None
        replies = []
        for unit in (u.strip() for u in line.split(";")):
            if not unit:
                continue
            self.commands += 1
            try:
                reply = self._one(unit)
            except ScpiError as exc:
                self.push_error(exc.code, exc.message)
                return None  # a query that fails answers nothing
            if reply is not None:
                replies.append(reply)
        if not replies:
            return None
        if self.faults.garbage:
            return "\u00b5#?\x7fERR@@" + "\u00ff" * 3  # not SCPI, not even ASCII
        return ";".join(replies)

    def _one(self, unit: str) -> str | None:
        header, _, args = unit.partition(" ")
        header = _canonical(header)
        args = args.strip()
        if header == "*IDN?":
            self.identity_queries += 1
            if self.faults.wrong_identity:
                i = self.identity  # the same model, another unit: the swap a serial check exists for
                other = i.serial[:-1] + ("2" if i.serial[-1:] != "2" else "3")
                return f"{i.manufacturer},{i.model},{other},{i.firmware}"
            return self.identity.reply()
        if header == "*RST":
            self.reset()
            return None
        if header == "*CLS":
            self.errors.clear()
            return None
        if header == "*OPC?":
            return "1"
        if header in ("SYST:ERR?", "SYST:ERR:NEXT?"):
            code, message = self.errors.popleft() if self.errors else (0, "No error")
            return f'{code:+d},"{message}"'
        if header in ("SYST:DATE?", "SYST:TIME?") and self.clock is not None:
            now = self.clock()
            if header == "SYST:DATE?":
                return f"{now.year},{now.month},{now.day}"
            return f"{now.hour},{now.minute},{now.second + now.microsecond // 1000 / 1000:.3f}"
        if header == "MEAS:TEMP?":
            return self._read(self._measure_channels(args))
        if header == "ROUT:SCAN":
            self.scan_list = self._channel_list(args, required=True)
            return None
        if header == "ROUT:SCAN?":
            return "(@" + ",".join(str(c) for c in self.scan_list) + ")"
        if header == "READ?":
            if not self.scan_list:
                raise ScpiError(-221, "Settings conflict;empty scan list")
            return self._read(self.scan_list)
        if header == "UNIT:TEMP":
            value = args.split(",", 1)[0].strip().upper()
            if value not in _UNITS:
                raise ScpiError(-224, "Illegal parameter value")
            self.unit = value
            return None
        if header == "UNIT:TEMP?":
            return self.unit
        raise ScpiError(-113, "Undefined header")

    def _measure_channels(self, args: str) -> list[int]:
        before = _CHANNEL_LIST.split(args, maxsplit=1)[0]
        probe = before.split(",")[0].strip().upper()
        if probe and probe not in _PROBES:
            raise ScpiError(-224, "Illegal parameter value")
        channels = self._channel_list(args, required=False)
        if not channels:
            if not self.scan_list:
                raise ScpiError(-221, "Settings conflict;empty scan list")
            return self.scan_list
        return channels

    def _channel_list(self, args: str, *, required: bool) -> list[int]:
        match = _CHANNEL_LIST.search(args)
        if match is None:
            if required:
                raise ScpiError(-109, "Missing parameter")
            return []
        channels: list[int] = []
        try:
            for part in match.group(1).split(","):
                first, _, last = part.strip().partition(":")
                lo, hi = int(first), int(last or first)
                channels += range(lo, hi + 1) if lo <= hi else range(lo, hi - 1, -1)
        except ValueError:
            raise ScpiError(-104, "Data type error") from None
        if not channels or any(c not in self.channels for c in channels):
            raise ScpiError(-224, "Illegal parameter value;no such channel")
        return channels

    def _read(self, channels: list[int]) -> str:
        values = self.measure(channels)
        fields = []
        for channel, celsius in zip(channels, values, strict=True):
            if channel in self.faults.overload:
                fields.append(OVERLOAD)
            else:
                fields.append(f"{_convert(celsius, self.unit):+.8E}")
        return ",".join(fields)


def _canonical(header: str) -> str:
    """``:MEASure:TEMPerature?`` → ``MEAS:TEMP?``; common commands (``*IDN?``) as they are."""
    header = header.strip().upper().lstrip(":")
    if header.startswith("*"):
        return header
    query = header.endswith("?")
    nodes = [_LONG_TO_SHORT.get(n, n) for n in header.rstrip("?").split(":")]
    return ":".join(nodes) + ("?" if query else "")


def _convert(celsius: float, unit: str) -> float:
    if unit == "K":
        return celsius + 273.15
    if unit == "F":
        return celsius * 9 / 5 + 32
    return celsius
