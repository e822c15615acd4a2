"""Records for the sink tests: real drafts, committed to a real journal, read back as the forwarder sends them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.sinks import SinkBatch, WireRecord

GATEWAY_ID = "suite-3"
EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def draft(i: int, **overrides: Any) -> RecordDraft:
    """A particle-counter reading; ``i`` picks the value, the time and one of two parameters."""
    fields: dict[str, Any] = {
        "equipment_id": "PC-A1",
        "equipment_class": "particle_counter",
        "isa95": Isa95Path(site="plant-1", area="grade-b", unit="suite-3"),
        "parameter": "particles_0_5um" if i % 2 else "particles_5_0um",
        "source": f"modbus+tcp://10.0.3.21:502/1/input/{30009 + i % 2}",
        "kind": Kind.MEASUREMENT,
        "value": float(1000 + i),
        "unit": "/m3",
        "quality": Quality.GOOD,
        "source_time": EPOCH + timedelta(seconds=i),
        "gateway_time": EPOCH + timedelta(seconds=i, milliseconds=3),
        "lot_id": "LOT-0001",
        "config_hash": "ab" * 32,
    }
    fields.update(overrides)
    return RecordDraft(**fields)


def wire_records(path: Path) -> list[WireRecord]:
    """Every record of a journal file exactly as the forwarder hands it to a sink."""
    with JournalReader(path) as reader:
        return [orjson.loads(payload) | {"hash": h, "delivery": {"late": False}} for _, payload, _, h in reader.rows()]


async def journal_records(path: Path, n: int, gateway_id: str = GATEWAY_ID, **overrides: Any) -> list[WireRecord]:
    """``n`` records committed to a real journal at ``path`` and read back as wire records."""
    async with Journal.open(path, gateway_id=gateway_id) as journal:
        await journal.append([(draft(i, **overrides), f"frame {i}".encode()) for i in range(n)])
    return wire_records(path)


def batch_of(records: list[WireRecord], attempt: int = 1, gateway_id: str = GATEWAY_ID) -> SinkBatch:
    return SinkBatch(gateway_id, records, attempt=attempt)
