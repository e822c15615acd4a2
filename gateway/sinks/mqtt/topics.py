"""Topic names of the unified namespace. Pure functions: no I/O.

A record goes to ``{prefix}/{site}/{area}/{unit}/{equipment_id}/{parameter}``, the ISA-95 path of
its equipment; a record whose equipment has no ISA-95 path goes under ``_unassigned`` for site, area
and unit. Each level is made safe to publish: the MQTT wildcards ``+`` and ``#``, the level separator
``/`` and NUL become ``_``, and an empty level becomes ``_``, so a name can never spill into another
level or turn a topic into a filter.

With ``payload: json-batch`` a message carries several records: consecutive records of one equipment
on the equipment's own topic, one level above its parameters (``.../{equipment_id}``, which a
``.../{equipment_id}/#`` subscription also matches), or every record of a gateway on
``{prefix}/_gateways/{gateway_id}/records``.
"""

from __future__ import annotations

from typing import Any

#: Site, area and unit of a record whose equipment has no ISA-95 path.
UNASSIGNED = "_unassigned"

_UNSAFE = str.maketrans({"+": "_", "#": "_", "/": "_", "\x00": "_"})


def segment(name: object) -> str:
    """One topic level: wildcards, ``/`` and NUL replaced by ``_``; an empty name is ``_``."""
    text = "" if name is None else str(name)
    return text.translate(_UNSAFE) or "_"


def record_topic(prefix: str, record: dict[str, Any]) -> str:
    """The topic a wire record is published on."""
    return topic(prefix, record.get("isa95"), record.get("equipment_id"), record.get("parameter"))


def equipment_topic(prefix: str, record: dict[str, Any]) -> str:
    """The topic of a json-batch message of one equipment's records: the parameters' parent level."""
    return topic(prefix, record.get("isa95"), record.get("equipment_id"))


def topic(prefix: str, isa95: dict[str, Any] | None, *names: object) -> str:
    """``prefix``, the ISA-95 path (or ``_unassigned`` thrice), then ``names``, each level made safe."""
    if isa95:
        path = (isa95.get("site"), isa95.get("area"), isa95.get("unit"))
    else:
        path = (UNASSIGNED, UNASSIGNED, UNASSIGNED)
    return prefix + "/" + "/".join([segment(level) for level in (*path, *names)])


def records_topic(prefix: str, gateway_id: str) -> str:
    """Where a json-batch sink with ``batch_topic: gateway`` publishes every record of the gateway, in order."""
    return f"{prefix}/_gateways/{segment(gateway_id)}/records"


def status_topic(prefix: str, gateway_id: str) -> str:
    """Where a gateway's birth, last will and clean-close messages are retained."""
    return f"{prefix}/_gateways/{segment(gateway_id)}/status"
