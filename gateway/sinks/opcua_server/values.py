"""Pure conversions from a wire record to OPC UA: quality → StatusCode, value → Variant, times, node ids.

No I/O here, so every mapping is tested without a server. A record's quality is already an OPC UA
status name (``Uncertain_EngineeringUnitsExceeded``); one the standard does not know becomes its
severity's generic code (``Bad``, ``Uncertain``, ``Good``) rather than an error, so a new quality
never stops the server from showing the value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from asyncua import ua

#: What a node path segment is when the record has no ISA-95 path.
UNASSIGNED = "_unassigned"

_INT64 = range(-(2**63), 2**63)
_UINT64 = range(2**64)
_SEVERITY = (("Good", ua.StatusCodes.Good), ("Uncertain", ua.StatusCodes.Uncertain), ("Bad", ua.StatusCodes.Bad))
_SEVERITY_MASK = 0xC0000000
_BAD = ua.StatusCode(ua.StatusCodes.Bad)


@cache
def status_code(quality: str) -> ua.StatusCode:
    """The StatusCode for a record's quality name: ``Bad_SensorFailure`` → ``BadSensorFailure``.

    An unknown name falls back by its prefix to the generic code of that severity; a name with no
    known prefix is ``Bad`` (the safe reading of a quality nobody understands).
    """
    code = getattr(ua.StatusCodes, quality.replace("_", ""), None)
    for prefix, generic in _SEVERITY:
        if quality.startswith(prefix):
            if isinstance(code, int) and code & _SEVERITY_MASK == generic & _SEVERITY_MASK:
                return ua.StatusCode(code)
            return ua.StatusCode(generic)
    return ua.StatusCode(ua.StatusCodes.Bad)


def variant(value: Any) -> ua.Variant:
    """A record value as a typed Variant: numbers stay numbers (Double, Int64), null is Null.

    An integer beyond Int64 becomes UInt64 when it fits, else Double: never a string.
    """
    if value is None:
        return ua.Variant(None, ua.VariantType.Null)
    if isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.Boolean)
    if isinstance(value, int):
        if value in _INT64:
            return ua.Variant(value, ua.VariantType.Int64)
        if value in _UINT64:
            return ua.Variant(value, ua.VariantType.UInt64)
        return ua.Variant(float(value), ua.VariantType.Double)
    if isinstance(value, float):
        return ua.Variant(value, ua.VariantType.Double)
    if isinstance(value, str):
        return ua.Variant(value, ua.VariantType.String)
    raise TypeError(f"a record value is bool, int, float, str or null, not {type(value).__name__}")


def data_type(value: Any) -> ua.NodeId:
    """The DataType a parameter variable is created with, from its first value (BaseDataType for null)."""
    kind = variant(value).VariantType
    if kind == ua.VariantType.Null:
        return ua.NodeId(ua.ObjectIds.BaseDataType)
    return ua.NodeId(kind.value)


def parse_time(text: str) -> datetime:
    """A record time (RFC 3339, ``Z`` or an offset) as aware UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


def data_value(record: dict[str, Any], now: datetime) -> ua.DataValue:
    """The DataValue a client reads for a record: value, status, the device's time, the server's time.

    SourceTimestamp is the record's ``source_time``, or ``gateway_time`` when the device sends none.
    A Bad status carries no value (OPC UA Part 4 7.7.1), whatever the record held. A null value under
    a Good or Uncertain quality (the gateway journals a missing value as Bad, so this is rare) is shown
    as plain ``Bad``: the server refuses a null in a variable that has held a typed value otherwise.
    """
    status = status_code(record["quality"])
    source = record.get("source_time") or record["gateway_time"]
    raw = record["value"]
    if raw is None and not status.is_bad():
        status = _BAD
    value = None if status.is_bad() else variant(raw)
    return ua.DataValue(Value=value, StatusCode=status, SourceTimestamp=parse_time(source), ServerTimestamp=now)


def equipment_path(gateway_id: str, record: dict[str, Any]) -> tuple[str, ...]:
    """The folder path of a record's equipment below Objects: gateway, site, area, unit, equipment."""
    isa95 = record.get("isa95") or {}
    return (
        gateway_id,
        isa95.get("site") or UNASSIGNED,
        isa95.get("area") or UNASSIGNED,
        isa95.get("unit") or UNASSIGNED,
        record["equipment_id"],
    )


def node_id_text(path: tuple[str, ...], prop: str | None = None) -> str:
    """The string NodeId of a folder or variable (``gw/site/area/unit/eq/param``), of a property ``…|prop``.

    Stable across restarts, so a SCADA tag configured by NodeId keeps working.
    """
    text = "/".join(path)
    return text if prop is None else f"{text}|{prop}"
