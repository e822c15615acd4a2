"""Pure conversions from OPC UA to the gateway: StatusCode → Quality, Variant value → typed value.

No I/O here, so every mapping is tested without a server. Nothing an OPC UA server says is lost: a
status code with no exact :class:`~gateway.records.Quality` member becomes its severity's generic
member with the code's own name in ``detail``; a value the record cannot carry (an array, a structure)
becomes ``None`` with ``Bad_DecodingError`` and says why, never a silently formatted string.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from asyncua import ua
from asyncua.ua.status_codes import get_name_and_doc

from gateway.records import Quality

_SEVERITY_MASK = 0xC0000000
_CODE_MASK = 0xFFFF0000
_GOOD, _UNCERTAIN, _BAD = 0x00000000, 0x40000000, 0x80000000
#: Translate and monitor results that mean "this node is not on the server": the point is quarantined.
MISSING_NODE_CODES = frozenset(
    {ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNoMatch, ua.StatusCodes.BadNodeIdInvalid}
)


def status_name(code: int) -> str:
    """The OPC UA name of a status code's code part (``BadNodeIdUnknown``), or its hex when unknown."""
    value = code & _CODE_MASK
    if value == 0:
        return "Good"
    name, doc = get_name_and_doc(value)
    return f"0x{value:08X}" if doc.startswith("Unknown StatusCode") else name


def quality_of(code: int) -> tuple[Quality, str | None]:
    """The Quality for a StatusCode value, and a detail line when the Quality says less than the code.

    ``BadSensorFailure`` → ``Bad_SensorFailure``; ``BadNodeIdUnknown`` (no member) → ``Bad`` with
    ``"BadNodeIdUnknown"`` as detail. Info bits (overflow, limits) are reported in the detail too.
    """
    name = status_name(code)
    severity = code & _SEVERITY_MASK
    generic = Quality.GOOD if severity == _GOOD else Quality.UNCERTAIN if severity == _UNCERTAIN else Quality.BAD
    info = code & ~_CODE_MASK & 0xFFFF
    quality: Quality | None = None
    for prefix in ("Good", "Uncertain", "Bad"):
        if name == prefix:
            quality = Quality(prefix)
        elif name.startswith(prefix):
            try:
                quality = Quality(f"{prefix}_{name[len(prefix) :]}")
            except ValueError:
                quality = None
            break
    detail: str | None = None
    if quality is None or quality.severity != generic.severity:
        quality, detail = generic, name
    if info:
        detail = f"{detail or name} (info bits 0x{info:04X})"
    return quality, detail


@dataclass(frozen=True, slots=True)
class Converted:
    """A value ready for a RawReading, and why it is not usable if it is not."""

    value: Any
    quality: Quality | None = None
    detail: str | None = None


def convert_value(value: Any) -> Converted:
    """A Variant's Python value as a record value: bool, int, float, str or None.

    LocalizedText is its text, a DateTime an ISO string in aware UTC, a NodeId or QualifiedName its
    string form, an enum its integer. Arrays, structures and byte strings are not carried as values:
    they come back as None with Bad_DecodingError and a detail naming the type.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return Converted(value)
    if isinstance(value, Enum):
        return Converted(int(value.value)) if isinstance(value.value, int) else Converted(str(value.value))
    if isinstance(value, ua.LocalizedText):
        return Converted(value.Text)
    if isinstance(value, datetime):
        return Converted(utc(value).isoformat())
    if isinstance(value, ua.NodeId | ua.QualifiedName):
        return Converted(value.to_string())
    if isinstance(value, uuid.UUID):
        return Converted(str(value))
    kind = type(value).__name__
    return Converted(None, Quality.BAD_DECODING_ERROR, f"a {kind} value cannot be carried as a record value")


def utc(moment: datetime) -> datetime:
    """An OPC UA DateTime as aware UTC (asyncua may hand back naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def timestamp(moment: datetime | None) -> datetime | None:
    """A DataValue timestamp as aware UTC; None when the server did not send one (MinDateTime too)."""
    if moment is None:
        return None
    aware = utc(moment)
    return None if aware.year <= 1601 else aware
