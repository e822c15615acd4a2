"""The freezer adapter: one serial line, a handshake at connect, then the freezer's stream of lines.

Lifecycle (what the supervisor relies on)::

    async with CrfAdapter(eq) as adapter:    # line open; ID?, PRF? and RUN? answered (CommunicationError if not)
        async for batch in adapter.batches():   # one batch per run of lines with the same run context
            ...
    # exit closes the line, idempotently

The freezer streams; nothing is acknowledged to it, so reads may overlap earlier commits. A silence
longer than ``silence_timeout_s`` (power lost, cable pulled on a line that stays open) and a line that
drops both end ``batches()`` with a CommunicationError; the supervisor journals the gap and reconnects.
A line that breaks the protocol is a ``line_error`` record, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import structlog

from adapters.serial.crf.codec import (
    Identity,
    LoadedProfile,
    Message,
    Reply,
    RunIdle,
    RunStart,
    query_identity,
    query_profile,
    query_run,
)
from adapters.serial.crf.config import CrfEquipmentConfig
from adapters.serial.crf.translate import LineAssembler, LineResult, Translator
from adapters.serial.transport import SerialLine
from gateway.adapter import ConnectedAdapter
from gateway.errors import DeviceTimeout
from gateway.records import ReadingBatch, utc_now

log = structlog.get_logger(__name__)

#: The connect handshake: each query and the message types that answer it.
HANDSHAKE: dict[str, tuple[type, ...]] = {
    "ID?": (Identity,),
    "PRF?": (LoadedProfile,),
    "RUN?": (RunStart, RunIdle),
}


class CrfAdapter(ConnectedAdapter):
    """One controlled-rate freezer on one serial line (a device path or a ``socket://`` device server)."""

    #: Nothing is acknowledged to the freezer: it streams whether or not the gateway keeps up.
    needs_acknowledge = False

    def __init__(self, equipment: CrfEquipmentConfig) -> None:
        self.eq = equipment
        self.line = SerialLine(equipment, label=equipment.id)
        self.assembler = LineAssembler()
        self.translator = Translator(equipment.id, equipment.source_base)
        self._pending: list[LineResult] = []
        #: The freezer's clock minus the gateway's, as the last sample line said (None before the first).
        self.clock_offset_s: float | None = None
        self.log = log.bind(equipment_id=equipment.id, port=equipment.port)

    async def connect(self) -> None:
        """Open the line and ask who the freezer is, which profile it holds and what it is running."""
        await self.line.open()
        await self._handshake()

    async def _handshake(self) -> None:
        """Ask for identity, loaded profile and run; keep every line that comes meanwhile (samples too)."""
        await self.line.write(query_identity() + query_profile() + query_run())
        waiting = dict(HANDSHAKE)
        try:
            async with asyncio.timeout(self.eq.reply_timeout_s):
                while waiting:
                    for result in self._translate(await self.line.read()):
                        self._pending.append(result)
                        for query in [q for q, types in waiting.items() if _answers(result.message, q, types)]:
                            del waiting[query]
        except TimeoutError:
            raise DeviceTimeout(
                f"no answer to {', '.join(waiting)} within {self.eq.reply_timeout_s:g} s",
                equipment_id=self.eq.id, address=self.eq.port,
            ) from None
        self.log.info("freezer connected", run_id=self.translator.run_id)

    async def batches(self) -> AsyncIterator[ReadingBatch]:
        pending, self._pending = self._pending, []
        for batch in self._group(pending):
            yield batch
        while True:
            try:
                async with asyncio.timeout(self.eq.silence_timeout_s):
                    data = await self.line.read()
            except TimeoutError:
                raise DeviceTimeout(
                    f"no line from the freezer for {self.eq.silence_timeout_s:g} s",
                    equipment_id=self.eq.id, address=self.eq.port,
                ) from None
            results = self._translate(data)
            queries = b"".join(q for r in results for q in r.queries)
            if queries:
                await self.line.write(queries)
            for batch in self._group(results):
                yield batch

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Nothing to tell the freezer."""

    async def close(self) -> None:
        """Close the line. Safe to call twice and after a failed open."""
        await self.line.close()

    def _translate(self, data: bytes) -> list[LineResult]:
        now = utc_now()
        return [self.translator.line(line, now) for line in self.assembler.feed(data)]

    def _group(self, results: Iterable[LineResult]) -> list[ReadingBatch]:
        """Consecutive lines with the same run context and clock offset in one batch (both go on every record)."""
        batches: list[ReadingBatch] = []
        for r in results:
            if r.clock_offset_s is not None:
                self.clock_offset_s = r.clock_offset_s
            if not r.readings and not r.events:
                continue
            last = batches[-1] if batches else None
            same = (r.lot_id, r.process_step, self.clock_offset_s)
            if last is not None and (last.lot_id, last.process_step, last.clock_offset_s) == same:
                last.readings += r.readings
                last.events += r.events
            else:
                batches.append(ReadingBatch(self.eq.id, list(r.readings), events=list(r.events),
                                            lot_id=r.lot_id, process_step=r.process_step,
                                            clock_offset_s=self.clock_offset_s))
        return batches


def _answers(message: Message | None, query: str, types: tuple[type, ...]) -> bool:
    """A message answers a handshake query when it is of the answering type, or refuses that query."""
    if isinstance(message, Reply):
        return message.reason is not None and message.command == query
    return isinstance(message, types)
