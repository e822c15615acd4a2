"""The ASTM adapter: moves bytes between the serial line and the link state machine, nothing more.

The instrument sends when it has something; the adapter answers at once except for the last frame of
a message, whose ACK waits until the message is committed (``needs_acknowledge``): the instrument keeps
a result until it is ACKed, so a gateway that crashes before its commit gets the message again.
Everything the link reports becomes a batch: each complete message (with its raw frames), each message
cut off or rejected (with its raw frames), each link event. A line that drops ends ``batches()`` with a
CommunicationError after the partial message, if any, has been handed over.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from adapters.serial.astm.config import AstmEquipmentConfig
from adapters.serial.astm.link import Action, Link, LinkEvent, RecordIn, SendResult, TransferEnded, Write
from adapters.serial.astm.message import Assembler, Delimiters, Discarded, Message, Rejected
from adapters.serial.astm.profile import AstmProfile
from adapters.serial.astm.results import Context, link_batch, message_batch, rejected_batch
from adapters.serial.transport import SerialLine
from gateway.adapter import ConnectedAdapter
from gateway.errors import CommunicationError
from gateway.records import ReadingBatch, utc_now

log = structlog.get_logger(__name__)

#: The token of a batch whose last frame's ACK waits for the commit.
HELD = "astm-ack-held"


class AstmAdapter(ConnectedAdapter):
    """One instrument on one serial line (a device path or a ``socket://`` URL)."""

    needs_acknowledge = True

    def __init__(self, equipment: AstmEquipmentConfig, profile: AstmProfile) -> None:
        self.equipment = equipment
        self.profile = profile
        self.line = SerialLine(equipment, label=f"{equipment.id} {equipment.port}")
        self.link = Link(equipment.link_settings(), role="computer")
        self.assembler = Assembler(encoding=equipment.encoding)
        self.tz = ZoneInfo(equipment.device_timezone)
        self.context = Context(
            equipment.id,
            equipment.endpoint,
            self.tz,
            re.compile(equipment.lot_pattern) if equipment.lot_pattern else None,
        )
        self._ready: deque[ReadingBatch] = deque()
        self._events: list[LinkEvent] = []
        self._next_query: float | None = None
        self.versions = equipment.result_versions()
        self._header_at: datetime | None = None
        self._log = log.bind(equipment_id=equipment.id, port=equipment.port)

    async def connect(self) -> None:
        await self.line.open()

    async def close(self) -> None:
        """Forget the link state and close the line; safe twice and after a failed open."""
        self.link.close()
        await self.line.close()

    async def batches(self) -> AsyncIterator[ReadingBatch]:
        loop = asyncio.get_running_loop()
        yield ReadingBatch(self.equipment.id, [])  # the line is open: the instrument is reachable
        interval = self.equipment.query_interval_s
        if interval is not None:
            self._next_query = loop.time()
        while True:
            while self._ready:
                yield self._ready.popleft()
            now = loop.time()
            if self._next_query is not None and interval is not None and now >= self._next_query:
                self._next_query = now + interval
                await self._apply(self.link.send(self._query(), now))
                continue
            due = [t for t in (self.link.deadline, self._next_query) if t is not None]
            try:
                async with asyncio.timeout(max(0.0, min(due) - now) if due else None):
                    data = await self.line.read()
            except TimeoutError:
                await self._apply(self.link.tick(loop.time()))
                continue
            except CommunicationError:
                await self._apply(self.link.close())
                while self._ready:
                    yield self._ready.popleft()
                raise
            await self._apply(self.link.feed(data, loop.time()))

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """The batch is committed: if it ends a message, ACK the frame the instrument is waiting on."""
        if batch.token == HELD:
            await self._apply(self.link.release(asyncio.get_running_loop().time()))

    # -- internals -------------------------------------------------------------------------------------
    async def _apply(self, actions: list[Action]) -> None:
        """Carry out the link's actions in order: write bytes, turn records and events into batches."""
        now = utc_now()
        for action in actions:
            if isinstance(action, Write):
                await self.line.write(action.data)
            elif isinstance(action, RecordIn):
                self._record(action, now)
            elif isinstance(action, TransferEnded):
                self._transfer_ended(action, now)
            elif isinstance(action, LinkEvent):
                self._events.append(action)
                self._log.debug("link event", link_event=action.name, detail=action.detail)
            elif isinstance(action, SendResult):
                self._log.info("query sent" if action.ok else "query not sent", detail=action.detail)
                if not action.ok:
                    self._events.append(LinkEvent("send_failed", action.detail))
        self._flush_events(now)

    def _record(self, record: RecordIn, now: datetime) -> None:
        if record.text[:1] == b"H":  # the instrument's clock (H.14) is compared with this moment
            self._header_at = now
        outcome = self.assembler.add(record.text, record.frames)
        batch: ReadingBatch | None = None
        if isinstance(outcome, Message):
            batch = message_batch(outcome, self.profile, self.context, now, self.versions, self._header_at)
        elif isinstance(outcome, Rejected | Discarded):
            self._log.warning("message not usable", reason=outcome.reason, frames=len(outcome.frames))
            batch = rejected_batch(outcome, self.context, now)
        if batch is None:
            return
        self._flush_events(now)  # what happened on the link before the message, first
        if record.held:
            batch.token = HELD
        self._ready.append(batch)

    def _transfer_ended(self, ended: TransferEnded, now: datetime) -> None:
        reason = ended.detail if ended.reason != "normal" else "the instrument ended the transfer (EOT) first"
        cut = self.assembler.cut(f"{reason}; the message never reached its terminator")
        if cut is not None:
            self._flush_events(now)
            self._log.warning("partial message discarded", reason=cut.reason, frames=len(cut.frames))
            self._ready.append(rejected_batch(cut, self.context, now))

    def _flush_events(self, now: datetime) -> None:
        if self._events:
            self._ready.append(link_batch(self._events, self.context, now))
            self._events = []

    def _query(self) -> list[bytes]:
        """A LIS2-A2 request for every result the instrument holds (header, query, terminator)."""
        d = Delimiters()
        stamp = datetime.now(self.tz).strftime("%Y%m%d%H%M%S")
        sender = d.escape_text(self.equipment.sender_name)
        text = [f"H|\\^&|||{sender}|||||||P|LIS2-A2|{stamp}", "Q|1|^ALL||^^^ALL||||||||F", "L|1|N"]
        return [r.encode(self.equipment.encoding) for r in text]
