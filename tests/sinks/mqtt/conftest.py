"""Fixtures for the MQTT sink tests: a real Mosquitto and real wire records.

``mosquitto`` fails (never skips) when the broker is not installed: ``make test`` installs it.
``wire_records(n)`` writes n records into a real journal and reads them back exactly as the
forwarder hands them to a sink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.journal import Journal, JournalReader
from gateway.records import RecordDraft
from tests.sinks.mqtt.support import GATEWAY_ID, WireRecords, draft


@pytest.fixture
def wire_records(tmp_path: Path) -> WireRecords:
    """``await wire_records(n)`` or ``await wire_records(drafts=[...])``: records as the forwarder sends them."""
    journals = iter(range(1_000_000))

    async def make(n: int = 0, drafts: list[RecordDraft] | None = None) -> list[dict[str, Any]]:
        path = tmp_path / f"journal-{next(journals)}.db"
        items = drafts if drafts is not None else [draft(i) for i in range(n)]
        async with Journal.open(path, gateway_id=GATEWAY_ID) as journal:
            await journal.append([(d, f"frame {i}".encode()) for i, d in enumerate(items)])
        with JournalReader(path) as reader:
            return [
                orjson.loads(payload) | {"hash": h, "delivery": {"late": False}} for _, payload, _, h in reader.rows()
            ]

    return make
