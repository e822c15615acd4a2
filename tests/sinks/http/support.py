"""Helpers of the HTTP sink tests: real records out of a real journal, batches as the forwarder builds them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.sinks import SinkBatch, WireRecord
from gateway.sinks.http import HttpSink

GATEWAY_ID = "suite-3"
_EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

MakeRecords = Callable[[int], Awaitable[list[WireRecord]]]
MakeSink = Callable[..., HttpSink]


def draft(i: int) -> RecordDraft:
    return RecordDraft(
        equipment_id="PC-A1",
        equipment_class="particle_counter",
        isa95=Isa95Path(site="plant-1", area="grade-b", unit="suite-3"),
        parameter="particles_0_5um" if i % 2 else "particles_5_0um",
        source=f"modbus+tcp://10.0.3.21:502/1/input/{30009 + i % 2}",
        kind=Kind.MEASUREMENT,
        value=float(1000 + i),
        unit="/m3",
        quality=Quality.GOOD,
        source_time=_EPOCH + timedelta(seconds=i),
        gateway_time=_EPOCH + timedelta(seconds=i, milliseconds=3),
        lot_id="LOT-0001",
        config_hash="ab" * 32,
    )


async def journal_records(path: Path, n: int) -> list[WireRecord]:
    """n records committed to a real journal and read back exactly as the forwarder sends them."""
    async with Journal.open(path, gateway_id=GATEWAY_ID) as journal:
        await journal.append([(draft(i), f"frame {i}".encode()) for i in range(n)])
    with JournalReader(path) as reader:
        return [orjson.loads(payload) | {"hash": h, "delivery": {"late": False}} for _, payload, _, h in reader.rows()]


def batch_of(records: list[WireRecord], attempt: int = 1) -> SinkBatch:
    return SinkBatch(GATEWAY_ID, records, attempt=attempt)


@asynccontextmanager
async def connected(sink: HttpSink) -> AsyncIterator[HttpSink]:
    """A connected sink, closed afterwards whatever happens."""
    await sink.connect()
    try:
        yield sink
    finally:
        await sink.close()
