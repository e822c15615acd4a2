"""What the API knows without asking SQLite per request: each device's last values, recent alarms, and
the live stream of committed records.

One task follows the journal's head: when a transaction commits it reads the new rows once (in a
thread, as stored JSON, no model per record) and updates the last values and alarms and hands each
subscriber of the live stream a summary. Every commit is seen this way, whoever wrote it: devices,
bindings, the housekeeper's quota alarm. A subscriber's queue is bounded; one that falls that far
behind is ended (its browser reconnects) rather than holding memory for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import structlog

from gateway.journal import Journal, JournalReader

log = structlog.get_logger(__name__)

Summary = dict[str, Any]
_T = TypeVar("_T")

#: The fields of a record the live stream and the last values carry.
SUMMARY_FIELDS = (
    "seq", "equipment_id", "parameter", "value", "unit", "quality", "kind", "source_time", "gateway_time",
    "lot_id", "detail",
)
#: Records read per page while catching up.
PAGE = 2000
#: How far back the start-up scan looks for alarms (the last values come from an indexed query).
ALARM_SCAN = 20_000


@dataclass(eq=False)
class Subscriber:
    """One live-stream client: batches of summaries, bounded; ``overflowed`` once it fell behind."""

    queue: asyncio.Queue[list[Summary]]
    overflowed: bool = False


class LiveState:
    def __init__(self, journal: Journal, *, alarm_history: int = 1000, queue_batches: int = 256) -> None:
        self.journal = journal
        self.cursor = 0
        #: equipment id → parameter → the summary of its newest record.
        self.last_values: dict[str, dict[str, Summary]] = {}
        #: equipment id → gateway_time of its newest record.
        self.newest: dict[str, datetime] = {}
        #: Recent alarm records, oldest first.
        self.alarms: deque[Summary] = deque(maxlen=alarm_history)
        #: (equipment id, parameter) → seq of its latest alarm record.
        self.latest_alarm: dict[tuple[str, str], int] = {}
        self._subscribers: set[Subscriber] = set()
        self._queue_batches = queue_batches
        self._reader: JournalReader | None = None
        self._reading = threading.Lock()

    async def load(self) -> None:
        """Start from what the journal holds: the last value of every parameter, the recent alarms."""
        self.cursor = self.journal.last_seq
        self._reader = await asyncio.to_thread(JournalReader, self.journal.path)
        known = await asyncio.to_thread(self._locked, self._read_start, self._reader, self.cursor)
        self._apply(known)

    async def follow(self) -> None:
        """Keep up with the journal until cancelled."""
        assert self._reader is not None, "load() first"
        while True:
            await self.journal.wait_for_commit(self.cursor)
            while self.cursor < self.journal.last_seq:
                batch = await asyncio.to_thread(self._locked, self._read_page, self._reader, self.cursor)
                if not batch:
                    break
                self.cursor = batch[-1]["seq"]
                self._apply(batch)
                self._publish(batch)

    async def close(self) -> None:
        """Close the reader once no thread is reading with it (a cancelled follow leaves its read running)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.to_thread(self._locked, reader.close)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(asyncio.Queue(self._queue_batches))
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def is_active(self, alarm: Summary) -> bool:
        """An alarm is active while it is the latest of its parameter and raised: not ``normal``, not a
        device's alarm flag reading false, not a gap (no value: the device is down, its tile says so)."""
        key = (alarm["equipment_id"], alarm["parameter"])
        value = alarm["value"]
        return self.latest_alarm.get(key) == alarm["seq"] and value not in ("normal", None) and value is not False

    def _apply(self, summaries: Iterable[Summary]) -> None:
        for s in summaries:
            eq, parameter = s["equipment_id"], s["parameter"]
            known = self.last_values.setdefault(eq, {}).get(parameter)
            if known is None or known["seq"] < s["seq"]:
                self.last_values[eq][parameter] = s
                at = datetime.fromisoformat(s["gateway_time"])
                if eq not in self.newest or self.newest[eq] < at:
                    self.newest[eq] = at
            if s["kind"] == "alarm" and self.latest_alarm.get((eq, parameter), 0) < s["seq"]:
                self.latest_alarm[(eq, parameter)] = s["seq"]
                self.alarms.append(s)

    def _publish(self, batch: list[Summary]) -> None:
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(batch)
            except asyncio.QueueFull:
                sub.overflowed = True
                self._subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait([])  # wakes the handler, which ends the stream
                log.warning("live stream client fell behind; ending its stream (it reconnects)")

    def _locked(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run blocking reader work in a thread, one at a time, so closing waits for a read in progress."""
        with self._reading:
            return work(*args)

    @staticmethod
    def _read_page(reader: JournalReader, since: int) -> list[Summary]:
        return [summary(seq, payload) for seq, payload, _, _ in reader.rows(since, PAGE, raw=False)]

    @staticmethod
    def _read_start(reader: JournalReader, last: int) -> list[Summary]:
        """The newest record of each parameter and the alarms of the last records, in seq order."""
        known = {seq: summary(seq, payload) for seq, payload, _, _ in reader.latest()}
        start = max(0, last - ALARM_SCAN)
        for seq, payload, _, _ in reader.rows(start, last - start, raw=False):
            s = summary(seq, payload)
            if s["kind"] == "alarm":
                known[seq] = s
        return [known[seq] for seq in sorted(known)]


def summary(seq: int, payload: bytes) -> Summary:
    body = orjson.loads(payload)
    body["seq"] = seq
    return {k: body.get(k) for k in SUMMARY_FIELDS}
