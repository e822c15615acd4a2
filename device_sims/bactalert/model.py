"""Bottles in a BacT/ALERT: loaded against lots, read every 10 minutes, positive at their time to detection,
negative at the end of their protocol. Pure: the simulator passes the simulated time in.

The instrument reads each bottle's CO₂ sensor every 10 minutes (BacT/ALERT IFU), so a bottle is found
positive at the first reading at or after its time to detection, and the reported TTD is that reading's
time minus the load time, in hours to one decimal, as the instrument shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

READING_INTERVAL = timedelta(minutes=10)
Status = Literal["in_progress", "positive", "negative"]


@dataclass
class Bottle:
    """One bottle. ``ttd_h`` None: it stays negative to the end of the protocol."""

    bottle_id: str
    specimen_id: str
    lot: str
    bottle_type: str = "iAST"
    cell: str = "A1-01"
    ttd_h: float | None = None
    protocol_days: float = 5.0
    loaded_at: datetime | None = None
    status: Status = "in_progress"
    readings: int = 0
    detected_at: datetime | None = None
    reported: list[Status] = field(default_factory=list)
    #: Times the instrument corrected this bottle's result after sending it.
    corrections: int = 0

    @classmethod
    def from_options(cls, raw: Mapping[str, Any], index: int, protocol_days: float) -> Bottle:
        data = dict(raw)
        lot = str(data.pop("lot", "LOT-SIM-0001"))
        bottle = cls(
            bottle_id=str(data.pop("bottle_id", f"{2347811234 + index}")),
            specimen_id=str(data.pop("specimen_id", f"W1234250{index:05d}")),
            lot=lot,
            bottle_type=str(data.pop("bottle_type", "iAST")),
            cell=str(data.pop("cell", f"A{1 + index // 60}-{1 + index % 60:02d}")),
            ttd_h=None if data.get("ttd_h") is None else float(data.pop("ttd_h")),
            protocol_days=float(data.pop("protocol_days", protocol_days)),
        )
        data.pop("ttd_h", None)
        if data:
            raise ValueError(f"bottle {index + 1}: unknown option(s) {', '.join(sorted(data))}")
        if bottle.ttd_h is not None and bottle.ttd_h < 0:
            raise ValueError(f"bottle {bottle.bottle_id}: ttd_h must be >= 0")
        return bottle

    @property
    def ttd_reported_h(self) -> float | None:
        """The time to detection as the instrument reports it (from load to the detecting reading)."""
        if self.status != "positive" or self.detected_at is None or self.loaded_at is None:
            return None
        return round((self.detected_at - self.loaded_at).total_seconds() / 3600, 1)

    @property
    def protocol_end(self) -> datetime | None:
        return None if self.loaded_at is None else self.loaded_at + timedelta(days=self.protocol_days)

    def correct(self, ttd_h: float) -> None:
        """The result is corrected after it was sent (a re-read, a mis-scan): positive at ``ttd_h`` from load."""
        if self.loaded_at is None:
            raise ValueError(f"bottle {self.bottle_id} is not loaded: there is no result to correct")
        self.status, self.detected_at = "positive", self.loaded_at + timedelta(hours=ttd_h)
        self.corrections += 1

    def read(self, at: datetime) -> Status | None:
        """One reading at ``at``; the new status when it changed (a result to report), else None."""
        if self.status != "in_progress" or self.loaded_at is None:
            return None
        self.readings += 1
        elapsed_h = (at - self.loaded_at).total_seconds() / 3600
        if self.ttd_h is not None and elapsed_h >= self.ttd_h:
            self.status, self.detected_at = "positive", at
            return self.status
        end = self.protocol_end
        assert end is not None
        if at >= end:
            self.status, self.detected_at = "negative", end
            return self.status
        return None
