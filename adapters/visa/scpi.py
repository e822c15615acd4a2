"""SCPI replies to values: numbers, channel lists, ``*IDN?`` and ``SYST:ERR?``. Pure: no I/O.

SCPI-99 (and IEEE 488.2 NR1/NR2/NR3) numbers are decimal text such as ``+1.234E+01``, ``-196.5`` or
``12``. Three values are not measurements: ``+9.9E37`` (overload, positive infinity: an open
thermocouple on most DAQs), ``-9.9E37`` (negative infinity, underrange) and ``9.91E37`` (not a number).
They become no value and a Bad quality with a detail, never a temperature of 10³⁷ °C.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gateway.records import Quality

OVERLOAD = 9.9e37
NOT_A_NUMBER = 9.91e37
#: Relative tolerance for recognising the special values: instruments print them as 9.9E37,
#: 9.90000000E+37 or +9.900E+37.
_SPECIAL_TOLERANCE = 1e-6
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_ERROR = re.compile(r'^\s*([+-]?\d+)\s*,\s*"(.*)"\s*$', re.DOTALL)


@dataclass(frozen=True, slots=True)
class Number:
    """One field of a reply: its value (None when the instrument gave none), quality and why."""

    text: str
    value: float | None
    quality: Quality = Quality.GOOD
    detail: str | None = None


def parse_number(field: str) -> Number:
    """One SCPI numeric field. Never raises: what cannot be read is Bad_DecodingError with the text."""
    text = field.strip()
    if not _NUMBER.match(text):
        shown = text if len(text) <= 40 else text[:40] + "..."
        return Number(text, None, Quality.BAD_DECODING_ERROR, f"instrument sent {shown!r}, not a SCPI number")
    value = float(text)
    if math.isclose(abs(value), OVERLOAD, rel_tol=_SPECIAL_TOLERANCE):
        side = "overload" if value > 0 else "underrange"
        return Number(
            text, None, Quality.BAD_SENSOR_FAILURE,
            f"instrument reported {side} ({text}): open or disconnected sensor, or beyond the input range",
        )
    if math.isclose(value, NOT_A_NUMBER, rel_tol=_SPECIAL_TOLERANCE):
        return Number(text, None, Quality.BAD_SENSOR_FAILURE, f"instrument reported not-a-number ({text})")
    if not math.isfinite(value):  # a float overflow of a too-long exponent
        return Number(text, None, Quality.BAD_DECODING_ERROR, f"instrument sent {text!r}, not a finite number")
    return Number(text, value)


def split_fields(reply: str) -> list[str]:
    """A reply's comma-separated fields (one per channel). An empty reply has no fields."""
    stripped = reply.strip()
    return [f.strip() for f in stripped.split(",")] if stripped else []


@dataclass(frozen=True, slots=True)
class Identity:
    """What ``*IDN?`` says: IEEE 488.2 §10.14, four comma-separated fields."""

    manufacturer: str
    model: str
    serial: str
    firmware: str

    def __str__(self) -> str:
        return ",".join((self.manufacturer, self.model, self.serial, self.firmware))


def parse_identity(reply: str) -> Identity | None:
    """The four ``*IDN?`` fields, or None when the reply does not have four."""
    fields = [f.strip() for f in reply.strip().split(",")]
    if len(fields) != 4:
        return None
    return Identity(*fields)


@dataclass(frozen=True, slots=True)
class InstrumentError:
    """One entry of the instrument's error queue (``SYST:ERR?``)."""

    code: int
    message: str

    @property
    def is_error(self) -> bool:
        """Code 0 is "No error": the queue is empty."""
        return self.code != 0

    def __str__(self) -> str:
        return f'{self.code:+d},"{self.message}"'


def parse_error(reply: str) -> InstrumentError | None:
    """``-113,"Undefined header"`` → (-113, "Undefined header"); None if the reply is not that shape."""
    match = _ERROR.match(reply)
    if match is None:
        return None
    return InstrumentError(int(match.group(1)), match.group(2))
