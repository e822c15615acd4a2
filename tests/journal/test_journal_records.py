"""What goes in comes out: every field, every value type, the raw bytes, and the hash over them."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from gateway.journal import GENESIS_HASH, Journal, JournalReader, record_hash, verify
from gateway.records import Kind, ProcessRecord, Quality

# (value, raw): every type a value may have, and raw bytes that are absent, empty or binary.
CASES = [
    (True, None),
    (False, b""),
    (0, b"\x00\x01\x02\xff"),
    (-(2**63), b"\x03"),
    (2**63 - 1, None),
    (21.5, b"21.5\r\n"),
    (2.0, None),  # a float that looks like an int stays a float
    (1e-7, None),
    (-0.0, None),
    (1e300, None),
    ("open", b"\x02OPEN\x03"),
    ("21.5", None),  # a string that looks like a number stays a string
    ("é ☃ \x00 \u2028 \"quoted\"", None),
    ("", None),
    (None, b"\x15"),
]


async def test_round_trip_preserves_every_field_type_and_raw(journal_path: Path, make_draft) -> None:
    local = timezone(timedelta(hours=2))
    drafts = [
        make_draft(
            i,
            value=value,
            kind=Kind.STATE if isinstance(value, str) else Kind.MEASUREMENT,
            quality=Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED if i % 2 else Quality.GOOD,
            source_time=datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=local) if i % 3 == 0 else None,
            clock_offset_s=-0.25 if i % 3 == 0 else None,
            isa95=None if i == 4 else make_draft(0).isa95,
            unit=None if i == 5 else "Cel",
            lot_id=f"LOT-{i}",
            coi_id="COI-7",
            din="W0000 25 123456 00",
            process_step="expansion",
            detail="out of range" if i % 2 else None,
        )
        for i, (value, _) in enumerate(CASES)
    ]
    raws = [raw for _, raw in CASES]
    raws[3] = bytearray(raws[3] or b"")  # bytearray is accepted and stored as bytes

    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        committed = await journal.append(list(zip(drafts, raws, strict=True)))

    assert list(committed.seqs) == list(range(1, len(CASES) + 1))
    with JournalReader(journal_path) as reader:
        stored = list(reader.read_raw())
    assert len(stored) == len(CASES)
    prev = GENESIS_HASH
    for i, (record, raw) in enumerate(stored):
        draft = drafts[i]
        expected = {**draft.model_dump(), "gateway_id": "gw-1", "seq": i + 1, "prev_hash": prev,
                    "hash": committed.hashes[i]}
        assert record.model_dump() == expected
        assert type(record.value) is type(draft.value)
        assert record == committed[i]
        assert raw == (bytes(raws[i]) if raws[i] is not None else None)
        assert type(raw) is type(raws[i] and bytes(raws[i]))
        assert record_hash(record, raw) == record.hash
        prev = record.hash
    assert stored[0][0].source_time is not None and stored[0][0].source_time.utcoffset() == timedelta(hours=2)
    assert verify(journal_path).ok


async def test_payload_is_the_documented_canonical_encoding(journal_path: Path, make_draft) -> None:
    """The bytes hashed are orjson(model_dump(mode="json") minus hash, plus raw_sha256, sorted keys)."""
    drafts = [make_draft(i, value=value) for i, (value, _) in enumerate(CASES)]
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(draft, raw) for draft, (_, raw) in zip(drafts, CASES, strict=True)])
    with JournalReader(journal_path) as reader:
        rows = list(reader.rows())
        records = list(reader.read())
    for (seq, payload, raw, hash_), record in zip(rows, records, strict=True):
        body = record.model_dump(mode="json", exclude={"hash"})
        body["raw_sha256"] = None if raw is None else hashlib.sha256(raw).hexdigest()
        assert payload == orjson.dumps(body, option=orjson.OPT_SORT_KEYS), f"seq {seq}"
        assert hash_ == hashlib.sha256(payload).hexdigest()


async def test_committed_gives_seqs_and_hashes_and_builds_records(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        first = await journal.append([(make_draft(i), None) for i in range(3)])
        second = await journal.append([(make_draft(i), None) for i in range(3, 5)])
        empty = await journal.append([])
        assert journal.head_hash == second.hashes[-1]
    assert (first.first_seq, first.last_seq, len(first)) == (1, 3, 3)
    assert second.seqs == range(4, 6) and second.prev_hash == first.hashes[-1]
    assert len(empty) == 0 and empty.seqs == range(6, 6)
    assert [r.seq for r in first] == [1, 2, 3]
    assert first[-1].seq == 3 and [r.seq for r in first[1:]] == [2, 3]
    assert isinstance(first[0], ProcessRecord) and first[0].prev_hash == GENESIS_HASH
    with pytest.raises(IndexError):
        first[3]


async def test_unstorable_drafts_fail_their_own_caller_only(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        with pytest.raises(ValueError, match="JSON cannot hold"):
            await journal.append([(make_draft(0), None), (make_draft(1, value=float("nan")), None)])
        with pytest.raises(ValueError, match="whole minutes"):
            odd = timezone(timedelta(hours=1, seconds=30))
            await journal.append([(make_draft(2, source_time=datetime(2025, 1, 1, tzinfo=odd)), None)])
        good = await journal.append([(make_draft(3), None)])
        with pytest.raises(ValueError, match="already committed"):
            await journal.append([(good[0], None)])
        with pytest.raises(TypeError, match="raw wire bytes"):
            await journal.append([(make_draft(4), "not bytes")])  # type: ignore[list-item]
        # Too big for a 64-bit JSON integer: found by the writer, inside a shared transaction.
        too_big, fine = await asyncio.gather(
            journal.append([(make_draft(5, value=2**64), None)]),
            journal.append([(make_draft(6), None), (make_draft(7), None)]),
            return_exceptions=True,
        )
        assert isinstance(too_big, ValueError) and "cannot be encoded" in str(too_big)
        assert not isinstance(fine, BaseException) and list(fine.seqs) == [2, 3]
        assert journal.stats.failed_transactions == 0
    report = verify(journal_path)
    assert report.ok and report.last_seq == 3


def test_record_hash_detects_a_changed_record(make_draft) -> None:
    draft = make_draft(1)
    fields = {**draft.model_dump(), "gateway_id": "gw", "seq": 1, "prev_hash": GENESIS_HASH, "hash": "x"}
    record = ProcessRecord.model_validate(fields)
    changed = record.model_copy(update={"value": 2.0})
    assert record_hash(record, b"raw") != record_hash(changed, b"raw")
    assert record_hash(record, b"raw") != record_hash(record, b"raw!")
    assert record_hash(record, None) != record_hash(record, b"")
    same_instant = record.model_copy(update={"gateway_time": draft.gateway_time.astimezone(UTC)})
    assert record_hash(record, None) == record_hash(same_instant, None)
