"""A positive culture is a high-priority alarm at once: a record monitor the plugin gives each ASTM device."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.serial.astm.profile import AstmProfile
from gateway.records import Kind

#: Bottles remembered so a result sent again (a query answer, a resend) does not alarm twice.
REMEMBERED = 10_000


class PositiveCultureMonitor:
    """Turns a positive status row into an alarm row in the same commit, once per bottle per run.

    Memory is per gateway process: after a restart the next report of the same positive alarms again,
    which errs on the side of telling.
    """

    def __init__(self, profile: AstmProfile) -> None:
        spec = profile.positive
        assert spec is not None
        self.status_parameter = profile.points[spec.point].parameter
        self.positive_value = spec.value
        self.alarm_parameter = spec.alarm_parameter
        self.key_parameters = [
            profile.points[p].parameter for p in (profile.bottle_point, profile.specimen_point) if p is not None
        ]
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for row in rows:
            if row.get("parameter") != self.status_parameter or row.get("value") != self.positive_value:
                continue
            items = {r["parameter"]: r for r in rows if r.get("kind") in (Kind.STATE, Kind.MEASUREMENT)}
            key = tuple(str(items[p]["value"]) for p in self.key_parameters if p in items) or (row["source"],)
            if key in self._seen:
                continue
            self._seen[key] = None
            if len(self._seen) > REMEMBERED:
                self._seen.popitem(last=False)
            facts = ", ".join(
                f"{p}={r['value']}" + (f" {r['unit']}" if r.get("unit") else "")
                for p, r in items.items()
                if p != self.status_parameter and r.get("value") is not None
            )
            out.append({
                "parameter": self.alarm_parameter,
                "kind": Kind.ALARM,
                "value": self.positive_value,
                "source": row["source"],
                "source_time": row.get("source_time"),
                "gateway_time": row["gateway_time"],
                "detail": f"HIGH priority: positive culture ({facts})",
            })
        return out
