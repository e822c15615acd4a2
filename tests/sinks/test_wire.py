"""Records handed over as stored: their JSON is byte for byte the decoded wire record's, whatever they hold."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, utc_now
from gateway.sinks import SinkConfig
from gateway.sinks.forwarder import Forwarder
from gateway.sinks.wire import UNKNOWN, StoredRecord, StoredRecords, member
from tests.sinks.records import GATEWAY_ID, draft
from tests.sinks.scripted import ScriptedSink
from tests.waiting import eventually

#: Records whose JSON is awkward: escapes, non-ASCII, braces and quotes where a byte scan might stop.
AWKWARD: list[dict[str, Any]] = [
    {},
    {"isa95": None, "value": None, "detail": 'line one\nline "two" \\ {braces}'},
    {"isa95": Isa95Path(site='plant "1"', area="grade}b", unit="suite\\3"), "equipment_id": "PC-ä1 ✓"},
    {"isa95": Isa95Path(site="", area="grade-b", unit="{x}"), "parameter": 'say "hi"', "value": "text: {}"},
    {"value": 3, "result_key": "PC-A1/specimen/1", "corrects": "unknown", "equipment_id": "\x01ctl"},
    {"value": True, "parameter": "gateway_time", "lot_id": '"isa95":{', "detail": '"equipment_id":"x"'},
]


async def stored_rows(path: Path, drafts: list[Any]) -> list[tuple[int, bytes, str]]:
    async with Journal.open(path, gateway_id=GATEWAY_ID) as journal:
        await journal.append([(d, f"frame {i}".encode()) for i, d in enumerate(drafts)])
    with JournalReader(path) as reader:
        return [(seq, payload, hash_) for seq, payload, _, hash_ in reader.rows(raw=False)]


def decoded(payload: bytes, hash_: str, late: bool) -> dict[str, Any]:
    """The wire record the way the forwarder builds it for a sink that takes dicts."""
    return orjson.loads(payload) | {"hash": hash_, "delivery": {"late": late}}


async def test_stored_json_is_byte_for_byte_the_decoded_wire_record(tmp_path: Path) -> None:
    rows = await stored_rows(tmp_path / "j.sqlite", [draft(i, **fields) for i, fields in enumerate(AWKWARD)])
    late = [i % 2 == 0 for i in range(len(rows))]
    stored = [StoredRecord(seq, payload, hash_, utc_now()) for seq, payload, hash_ in rows]
    records = StoredRecords(stored, late)
    expected = [decoded(payload, hash_, is_late) for (_, payload, hash_), is_late in zip(rows, late, strict=True)]
    for i, wire in enumerate(expected):
        assert records.json(i) == orjson.dumps(wire)
        assert records[i] == wire and records.seq(i) == wire["seq"]
    assert records.json_array() == orjson.dumps(expected)
    assert list(records) == expected and len(records) == len(expected)
    tail = records[2:4]
    assert isinstance(tail, StoredRecords) and list(tail) == expected[2:4]
    assert tail.json_array() == orjson.dumps(expected[2:4])
    assert records[:0].json_array() == orjson.dumps([]) == b"[]"


async def test_a_member_read_from_the_bytes_is_the_decoded_value_or_unknown(tmp_path: Path) -> None:
    rows = await stored_rows(tmp_path / "j.sqlite", [draft(i, **fields) for i, fields in enumerate(AWKWARD)])
    records = StoredRecords([StoredRecord(s, p, h, utc_now()) for s, p, h in rows], [False] * len(rows))
    plain = 0
    for i, (_, payload, _) in enumerate(rows):
        body = orjson.loads(payload)
        for key in ("equipment_id", "parameter", "isa95", "gateway_time", "lot_id"):
            value = member(payload, key)
            assert value is UNKNOWN or value == body[key], (key, body[key])
            plain += value is not UNKNOWN
            assert records.member(i, key) == body[key]  # decoded when the bytes do not say
        assert member(payload, "no_such_member") is UNKNOWN
    assert plain >= 20  # the usual records are read from the bytes, not decoded


@dataclass
class StoredSink(ScriptedSink):
    """The same scripted sink, asking for records as stored."""

    takes_stored = True


async def test_the_forwarder_hands_a_stored_sink_the_same_records_as_a_dict_sink(tmp_path: Path) -> None:
    drafts = [draft(i, **AWKWARD[i % len(AWKWARD)]) for i in range(30)] + [draft(30, gateway_time=utc_now())]
    config = SinkConfig.model_validate({"name": "x", "type": "scripted", "batch": {"max_records": 8, "max_age_s": 0}})
    sinks = {"dicts": ScriptedSink(), "stored": StoredSink()}
    async with Journal.open(tmp_path / "j.sqlite", gateway_id=GATEWAY_ID) as journal:
        await journal.append([(d, b"frame") for d in drafts])
        for name, sink in sinks.items():
            forwarder = Forwarder(sink, config.model_copy(update={"name": name}), journal, rng=random.Random(1))
            task = asyncio.create_task(forwarder.run())
            try:
                await eventually(lambda f=forwarder: f.status.cursor == 31, timeout_s=10, what=f"{name} drained")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    dict_batches, stored_batches = sinks["dicts"].batches, sinks["stored"].batches
    assert [b.seqs for b in stored_batches] == [b.seqs for b in dict_batches]
    for plain, stored in zip(dict_batches, stored_batches, strict=True):
        assert isinstance(stored.records, StoredRecords) and not isinstance(plain.records, StoredRecords)
        assert stored.records.json_array() == orjson.dumps(list(plain.records))
    assert [r["delivery"]["late"] for b in stored_batches for r in b.records] == [True] * 30 + [False]


def test_a_batch_needs_a_late_mark_per_record() -> None:
    with pytest.raises(ValueError, match="2 records but 1 late marks"):
        StoredRecords([StoredRecord(1, b"{}", "h", utc_now())] * 2, [True])
