"""The result fields added after schema 1 (``result_key``, ``corrects``): a record without them hashes
byte for byte as before they existed, and a record with them is hashed, stored, verified and exported."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.journal import GENESIS_HASH, Journal, JournalReader, csv_columns, export_csv, record_hash, verify
from gateway.journal._chain import draft_body, encode_payload, payload_hash
from gateway.records import Isa95Path, Kind, Quality, RecordDraft

#: The hash of this record as the journal computed it before the result fields were added.
PINNED = "25d469e32b983a9975ff3b2261bcea0609490f197f943ffc78fcff0aa737fe20"
RAW = b"\x024R|1\r\x03FB\r\n"


def culture_status(**extra: object) -> RecordDraft:
    return RecordDraft(
        equipment_id="BTA-1", equipment_class="culture_reader", isa95=Isa95Path(site="s", area="a", unit="u"),
        parameter="culture_status", source="astm+serial:///dev/ttyS0/R1/4", kind=Kind.STATE, value="positive",
        quality=Quality.GOOD, source_time=datetime(2025, 1, 14, 9, 30, 12, tzinfo=UTC),
        gateway_time=datetime(2025, 1, 14, 9, 30, 20, 123456, tzinfo=UTC), clock_offset_s=-8.0, lot_id="LOT-A",
        config_hash="ab" * 32, **extra,  # type: ignore[arg-type]
    )


def first_payload(draft: RecordDraft, raw: bytes | None) -> bytes:
    return encode_payload(draft_body(draft, raw) | {"gateway_id": "gw", "seq": 1, "prev_hash": GENESIS_HASH})


def test_a_record_without_result_fields_hashes_exactly_as_before_they_existed() -> None:
    payload = first_payload(culture_status(), RAW)
    assert payload_hash(payload) == PINNED
    assert b"result_key" not in payload and b"corrects" not in payload
    assert "result_key" not in culture_status().model_dump()


def test_result_fields_are_hashed_when_set() -> None:
    keyed = first_payload(culture_status(result_key="BTA-1/S1/B1/STATUS"), RAW)
    correction = first_payload(culture_status(result_key="BTA-1/S1/B1/STATUS", corrects="unknown"), RAW)
    assert len({payload_hash(keyed), payload_hash(correction), PINNED}) == 3
    assert orjson.loads(correction)["corrects"] == "unknown"


async def test_records_with_and_without_result_fields_round_trip_verify_and_export(
    journal_path: Path, make_draft
) -> None:
    drafts = [
        make_draft(0),
        make_draft(1, result_key="BTA-1/S1/B1/TTD"),
        make_draft(2, result_key="BTA-1/S1/B1/TTD", corrects="ab" * 32),
    ]
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        committed = await journal.append([(d, b"raw") for d in drafts])
    with JournalReader(journal_path) as reader:
        stored = list(reader.read_raw())
        payloads = [payload for _, payload, _, _ in reader.rows()]
    assert [(r.result_key, r.corrects) for r, _ in stored] == [
        (None, None), ("BTA-1/S1/B1/TTD", None), ("BTA-1/S1/B1/TTD", "ab" * 32)
    ]
    assert [record_hash(r, raw) for r, raw in stored] == list(committed.hashes)
    assert [set(orjson.loads(p)) & {"result_key", "corrects"} for p in payloads] == [
        set(), {"result_key"}, {"result_key", "corrects"}
    ]
    assert verify(journal_path).ok
    out = io.StringIO()
    export_csv(journal_path, out)
    header, *rows = out.getvalue().splitlines()
    assert {"result_key", "corrects"} <= set(csv_columns()) and header.split(",") == csv_columns()
    assert rows[2].count("BTA-1/S1/B1/TTD") == 1 and "ab" * 32 in rows[2]
