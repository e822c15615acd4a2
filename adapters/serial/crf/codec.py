"""The freezer line protocol, pure: bytes to typed messages and commands to bytes. No I/O, no clock.

One message per line: ``$BODY*CCCC<CR><LF>``, where BODY is comma-separated printable ASCII whose
first field names the message, and CCCC is the CRC-16/CCITT-FALSE of BODY (poly 0x1021, init 0xFFFF,
the bytes between ``$`` and ``*``) in four uppercase hex digits. Every field has a strict form; a line
that breaks any rule raises :class:`LineError` and yields nothing else. The full description, with
worked examples, is in this package's README.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

#: Longest line the protocol allows (a sample line is about 90 bytes).
MAX_LINE = 200

#: Alarm bits of the sample line's last field, by point name in the device map.
ALARM_BITS: dict[str, int] = {
    "alarm_ln2_supply": 0x01,
    "alarm_door_open": 0x02,
    "alarm_chamber_probe": 0x04,
    "alarm_sample_probe": 0x08,
    "alarm_device_deviation": 0x10,
    "alarm_power_fail": 0x20,
}
KNOWN_ALARMS = sum(ALARM_BITS.values())

#: What a thermocouple input shows instead of a number when it cannot measure.
PROBE_FAULTS: dict[str, str] = {
    "OPEN": "thermocouple open circuit",
    "SHORT": "thermocouple short circuit",
    "OVER": "above the input's range",
    "UNDER": "below the input's range",
}
STEP_TYPES = {"I": "idle", "H": "hold", "R": "ramp"}
OUTCOMES = {"COMPLETE": "complete", "STOPPED": "stopped", "ABORTED": "aborted", "POWERFAIL": "power_fail"}

_TIME = re.compile(r"^(\d{8})T(\d{6})Z$")
_TEMP = re.compile(r"^-?\d{1,3}\.\d{1,2}$")
_PCT = re.compile(r"^\d{1,3}\.\d$")
_INT = re.compile(r"^\d{1,6}$")
_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_COMMAND = re.compile(r"^[A-Z?]{1,8}$")
_HEX = re.compile(r"^[0-9A-F]{4}$")
_CHECKSUM = re.compile(r"^[0-9A-F]{4,16}$")
_TEXT = re.compile(r"^[\x20-\x7e]{0,80}$")
_FRAME = re.compile(rb"^\$([\x20-\x7e]{1,%d})\*([0-9A-F]{4})$" % MAX_LINE)


class LineError(ValueError):
    """A line that breaks the protocol. ``reason`` is short and stable (it becomes a record's value)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class Probe:
    """A temperature input: a value in Cel, or the fault code the device shows instead."""

    value: float | None
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    time: datetime
    run_id: str | None
    step: int
    step_type: str
    step_elapsed_s: int
    set_point: float
    chamber: Probe
    probes: tuple[Probe, ...]
    valve_pct: float
    alarms: int


@dataclass(frozen=True, slots=True)
class Identity:
    manufacturer: str
    model: str
    serial: str
    firmware: str


@dataclass(frozen=True, slots=True)
class LoadedProfile:
    """The profile the freezer has loaded (``name`` None: none loaded)."""

    name: str | None
    version: int | None = None
    checksum: str | None = None
    steps: int | None = None


@dataclass(frozen=True, slots=True)
class RunStart:
    """A run began (``RUN,START``), or was already going when asked (``RUN,ACTIVE``: ``in_progress``)."""

    time: datetime
    run_id: str
    profile: str
    checksum: str
    lot: str | None
    in_progress: bool = False


@dataclass(frozen=True, slots=True)
class RunEnd:
    time: datetime
    run_id: str
    outcome: str
    samples: int


@dataclass(frozen=True, slots=True)
class RunIdle:
    """The answer to ``RUN?`` when no run is going."""


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    time: datetime
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    """``ACK,<command>`` (``reason`` None) or ``NAK,<command>,<reason>``."""

    command: str
    reason: str | None = None


Message = Sample | Identity | LoadedProfile | RunStart | RunEnd | RunIdle | DeviceEvent | Reply


def crc16(body: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor (check "123456789" = 29B1)."""
    return binascii.crc_hqx(body, 0xFFFF)


def frame(*fields: str) -> bytes:
    """A complete line, CR LF included, from its fields (the first names the message)."""
    body = ",".join(fields).encode("ascii")
    return b"$" + body + b"*" + f"{crc16(body):04X}".encode("ascii") + b"\r\n"


def unframe(line: bytes) -> list[str]:
    """The fields of one line (without its CR LF), after the frame and the CRC are checked."""
    m = _FRAME.match(line)
    if m is None:
        if not line.startswith(b"$"):
            raise LineError("no_start", f"line does not start with '$': {_show(line)}")
        if len(line) > MAX_LINE + 6:
            raise LineError("too_long", f"{len(line)} bytes (at most {MAX_LINE + 6})")
        raise LineError("bad_frame", f"not $BODY*CCCC with printable ASCII: {_show(line)}")
    body, sent = m.group(1), int(m.group(2), 16)
    if b"$" in body or b"*" in body:
        raise LineError("bad_frame", f"'$' or '*' inside the body: {_show(line)}")
    actual = crc16(body)
    if actual != sent:
        raise LineError("bad_checksum", f"CRC {sent:04X} sent, {actual:04X} computed: {_show(line)}")
    return body.decode("ascii").split(",")


def parse_line(line: bytes) -> Message:
    """One device line (CR LF already stripped) as a message; LineError if it breaks any rule."""
    fields = unframe(line)
    kind, args = fields[0], fields[1:]
    parser = _PARSERS.get(kind)
    if parser is None:
        raise LineError("unknown_message", f"message type {kind!r}")
    count = _COUNTS[kind]
    if len(args) not in count:
        raise LineError("field_count", f"{kind} has {len(args)} fields, expected {' or '.join(map(str, count))}")
    return parser(args)


def _sample(a: list[str]) -> Sample:
    step_type = STEP_TYPES.get(a[3])
    if step_type is None:
        raise LineError("bad_field", f"step type {a[3]!r} (I, H or R)")
    alarms = _match(_HEX, a[10], "alarms")
    probe2 = () if a[8] == "-" else (_probe(a[8], "probe 2"),)
    return Sample(
        time=_time(a[0]),
        run_id=None if a[1] == "-" else _match(_ID, a[1], "run id"),
        step=_int(a[2], "step", 99),
        step_type=step_type,
        step_elapsed_s=_int(a[4], "step time"),
        set_point=_temp(a[5], "set point"),
        chamber=_probe(a[6], "chamber"),
        probes=(_probe(a[7], "probe 1"), *probe2),
        valve_pct=_pct(a[9]),
        alarms=int(alarms, 16),
    )


def _identity(a: list[str]) -> Identity:
    return Identity(*(_match(_TEXT, v, "identity") for v in a))


def _profile(a: list[str]) -> LoadedProfile:
    if a == ["-"]:
        return LoadedProfile(None)
    if len(a) != 4:
        raise LineError("field_count", f"PRF has {len(a)} fields, expected 4 (or '-')")
    return LoadedProfile(
        name=_match(_ID, a[0], "profile name"),
        version=_int(a[1], "profile version", 9999),
        checksum=_match(_CHECKSUM, a[2], "profile checksum"),
        steps=_int(a[3], "profile steps", 99),
    )


def _run(a: list[str]) -> Message:
    what = a[0]
    if what == "IDLE" and len(a) == 1:
        return RunIdle()
    if what in ("START", "ACTIVE") and len(a) == 6:
        return RunStart(
            time=_time(a[1]),
            run_id=_match(_ID, a[2], "run id"),
            profile=_match(_ID, a[3], "profile name"),
            checksum=_match(_CHECKSUM, a[4], "profile checksum"),
            lot=None if a[5] == "-" else _match(_ID, a[5], "lot"),
            in_progress=what == "ACTIVE",
        )
    if what == "END" and len(a) == 5:
        outcome = OUTCOMES.get(a[3])
        if outcome is None:
            raise LineError("bad_field", f"run outcome {a[3]!r} ({', '.join(OUTCOMES)})")
        return RunEnd(_time(a[1]), _match(_ID, a[2], "run id"), outcome, _int(a[4], "sample count"))
    raise LineError("bad_field", f"RUN {what!r} with {len(a) - 1} fields")


def _event(a: list[str]) -> DeviceEvent:
    return DeviceEvent(_time(a[0]), _match(_ID, a[1], "event code"), _match(_TEXT, a[2], "event text"))


def _ack(a: list[str]) -> Reply:
    return Reply(_match(_COMMAND, a[0], "command"))


def _nak(a: list[str]) -> Reply:
    return Reply(_match(_COMMAND, a[0], "command"), _match(_TEXT, a[1], "reason") or "?")


_PARSERS = {"S": _sample, "ID": _identity, "PRF": _profile, "RUN": _run, "EVT": _event, "ACK": _ack, "NAK": _nak}
_COUNTS: dict[str, tuple[int, ...]] = {
    "S": (11,), "ID": (4,), "PRF": (1, 4), "RUN": (1, 5, 6), "EVT": (3,), "ACK": (1,), "NAK": (2,),
}


def _match(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value):
        raise LineError("bad_field", f"{what} {value!r}")
    return value


def _int(value: str, what: str, maximum: int = 999_999) -> int:
    n = int(_match(_INT, value, what))
    if n > maximum:
        raise LineError("bad_field", f"{what} {n} above {maximum}")
    return n


def _temp(value: str, what: str) -> float:
    t = float(_match(_TEMP, value, what))
    if not -273.15 <= t <= 999:
        raise LineError("bad_field", f"{what} {t} is not a temperature")
    return t


def _probe(value: str, what: str) -> Probe:
    if value in PROBE_FAULTS:
        return Probe(None, value)
    return Probe(_temp(value, what))


def _pct(value: str) -> float:
    pct = float(_match(_PCT, value, "valve demand"))
    if pct > 100.0:
        raise LineError("bad_field", f"valve demand {pct} above 100 %")
    return pct


def _time(value: str) -> datetime:
    m = _TIME.match(value)
    if m is None:
        raise LineError("bad_field", f"time {value!r} (YYYYMMDDTHHMMSSZ)")
    try:
        return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise LineError("bad_field", f"time {value!r} is not a date") from None


def _show(line: bytes) -> str:
    """A line as printable text for a detail: non-ASCII and controls as \\xNN, cut at 80 characters."""
    text = line[:80].decode("ascii", "backslashreplace")
    text = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in text)
    return text + ("..." if len(line) > 80 else "")


# -- commands (host -> freezer) ----------------------------------------------------------------------
def query_identity() -> bytes:
    return frame("ID?")


def query_profile() -> bytes:
    return frame("PRF?")


def query_run() -> bytes:
    return frame("RUN?")
