"""DataValues → RawReadings and ReadingBatches, shared by the subscribe and poll modes. No I/O.

This is where a point's quality, both timestamps and its source URI are decided, and where a node
the server does not know is quarantined: it gets one bad-quality reading and a ``node_quarantined``
event, and the other points keep flowing.

A batch never holds two readings of the same point: the core keys a batch's readings by point, so a
burst with several values of one node (a server-side queue, or two publishes drained together) is cut
into consecutive batches, in arrival order, and every value is journalled.

The device clock is compared with the gateway's on fresh samples: a value whose SourceTimestamp differs
from the one last seen for that point in this session is a sample the device has just stamped, so its
SourceTimestamp minus its receipt time is the clock offset, short by the delivery delay (at most about
the sampling plus publishing interval). Each batch carries the largest such difference it holds (the
least delayed sample), or the last one compared before it. The first value of each point in a session
is never compared: it may be an hour-old value that simply has not changed since.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from asyncua import ua

from adapters.opcua.nodemap import OpcUaPoint
from adapters.opcua.program import ProgramTracker
from adapters.opcua.status import MISSING_NODE_CODES, convert_value, quality_of, status_name, timestamp
from gateway.records import Quality, RawReading, ReadingBatch, utc_now


@dataclass
class ResolvedPoint:
    """A map point bound to this session's NodeId, or quarantined with the status that says why."""

    point: OpcUaPoint
    source: str
    node_id: ua.NodeId | None = None
    problem: int | None = None

    @property
    def usable(self) -> bool:
        return self.node_id is not None and self.problem is None


class BatchBuilder:
    """Builds batches for one equipment; keeps the program state and which points are quarantined."""

    def __init__(self, equipment_id: str, points: list[ResolvedPoint], tracker: ProgramTracker) -> None:
        self.equipment_id = equipment_id
        self.points = points
        self.tracker = tracker
        self._readings: list[RawReading] = []
        self._events: list[tuple[str, str]] = []
        self._in_batch: set[str] = set()
        self._done: list[ReadingBatch] = []
        #: The SourceTimestamp last seen of each point: a different one next time is a fresh sample.
        self._stamps: dict[str, datetime] = {}
        self._fresh_offset: float | None = None
        #: Device clock minus gateway clock as last compared (None until a fresh sample has come).
        self.clock_offset_s: float | None = None

    def _append(self, reading: RawReading) -> None:
        if reading.point in self._in_batch:
            self._cut()
        self._in_batch.add(reading.point)
        self._readings.append(reading)

    def _cut(self) -> None:
        events = self._events + self.tracker.end_of_batch()
        lot, step = self.tracker.context()
        if self._fresh_offset is not None:
            self.clock_offset_s, self._fresh_offset = self._fresh_offset, None
        self._done.append(
            ReadingBatch(self.equipment_id, self._readings, events=events, lot_id=lot, process_step=step,
                         clock_offset_s=self.clock_offset_s)
        )
        self._readings, self._events, self._in_batch = [], [], set()

    def quarantine(self, rp: ResolvedPoint, code: int) -> None:
        """Take a point out of service: one bad reading and one event, then never again for this session."""
        if rp.problem is not None:
            return
        rp.problem = code
        name = status_name(code)
        self._append(
            RawReading(
                self.equipment_id,
                rp.point.name,
                rp.source,
                None,
                utc_now(),
                quality=Quality.BAD_CONFIGURATION_ERROR,
                detail=f"{name}: node not on the server; point quarantined",
            )
        )
        self._events.append(("node_quarantined", f"{rp.point.name} {rp.point.address}: {name}"))

    def add(self, rp: ResolvedPoint, dv: ua.DataValue) -> None:
        """One DataValue of one point, as it came from the server."""
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        if (code & 0xFFFF0000) in MISSING_NODE_CODES:
            self.quarantine(rp, code & 0xFFFF0000)
            return
        quality, detail = quality_of(code)
        raw_value = dv.Value.Value if dv.Value is not None else None
        converted = convert_value(raw_value)
        if converted.quality is not None:
            quality = quality.worst(converted.quality)
            detail = "; ".join(d for d in (detail, converted.detail) if d)
        reading = RawReading(
            self.equipment_id,
            rp.point.name,
            rp.source,
            converted.value,
            utc_now(),
            quality=quality,
            source_time=timestamp(dv.SourceTimestamp),
            detail=detail,
            server_time=timestamp(dv.ServerTimestamp),
        )
        self._append(reading)
        self._compare_clock(reading)  # after the append, which may cut: the comparison goes with its reading
        if quality.severity != "bad" and self.tracker.watches(rp.point.name):
            self.tracker.update(rp.point.name, converted.value)

    def _compare_clock(self, reading: RawReading) -> None:
        """A fresh sample's SourceTimestamp against its receipt (see the module docstring)."""
        stamp = reading.source_time
        if stamp is None:
            return
        last = self._stamps.get(reading.point)
        self._stamps[reading.point] = stamp
        if last is None or last == stamp:
            return
        offset = (stamp - reading.gateway_time).total_seconds()
        if self._fresh_offset is None or offset > self._fresh_offset:
            self._fresh_offset = offset

    def add_all(self, pairs: Iterable[tuple[ResolvedPoint, ua.DataValue]]) -> None:
        for rp, dv in pairs:
            self.add(rp, dv)

    def take(self) -> list[ReadingBatch]:
        """Everything added since the last take, oldest first: one batch, or more when a point repeats.

        Always at least one batch (possibly empty: the caller's "alive, nothing new").
        """
        self._cut()
        done, self._done = self._done, []
        return done
