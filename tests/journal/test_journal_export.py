"""JSONL and CSV exports: complete, ordered, typed, and checkable without the journal."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from pathlib import Path

import orjson
import pytest

from gateway.journal import GENESIS_HASH, Journal, JournalReader, csv_columns, export_csv, export_jsonl

VALUES = [True, 7, "7", None, 21.5, "on, \"quoted\"\nnext line"]


@pytest.fixture
async def written(journal_path: Path, make_draft) -> Path:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append(
            [(make_draft(i, value=v, isa95=None if i == 3 else make_draft(0).isa95), bytes([i]) if i % 2 else None)
             for i, v in enumerate(VALUES)]
        )
    return journal_path


def test_jsonl_lines_are_the_hashed_records_and_verify_on_their_own(written: Path) -> None:
    out = io.BytesIO()
    assert export_jsonl(written, out, include_raw=True) == len(VALUES)
    lines = out.getvalue().splitlines()
    prev = GENESIS_HASH
    for seq, line in enumerate(lines, start=1):
        body = orjson.loads(line)
        hash_, raw_b64 = body.pop("hash"), body.pop("raw_b64")
        assert hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest() == hash_
        assert body["seq"] == seq and body["prev_hash"] == prev
        raw = None if raw_b64 is None else base64.b64decode(raw_b64)
        assert raw == (bytes([seq - 1]) if (seq - 1) % 2 else None)
        assert body["raw_sha256"] == (None if raw is None else hashlib.sha256(raw).hexdigest())
        assert body["value"] == VALUES[seq - 1] and type(body["value"]) is type(VALUES[seq - 1])
        prev = hash_


async def test_jsonl_to_text_from_a_running_journal_or_a_reader_after_a_seq(written: Path, make_draft) -> None:
    async with Journal.open(written, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(9), None)])
        text = io.StringIO()
        assert export_jsonl(journal, text, since_seq=4) == 3
    assert [orjson.loads(line)["seq"] for line in text.getvalue().splitlines()] == [5, 6, 7]
    assert "raw_b64" not in text.getvalue()
    with JournalReader(written) as reader:
        assert export_jsonl(reader, io.BytesIO(), since_seq=7) == 0
        assert reader.last_seq() == 7  # the reader is left open for its owner


def test_csv_has_a_flat_typed_header_and_one_row_per_record(written: Path) -> None:
    out = io.StringIO(newline="")
    assert export_csv(written, out) == len(VALUES)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert list(rows[0]) == csv_columns()
    assert csv_columns()[:2] == ["gateway_id", "seq"] and csv_columns()[-3:] == ["prev_hash", "raw_sha256", "hash"]
    assert {"isa95_site", "isa95_area", "isa95_unit", "value_type"} <= set(csv_columns())
    assert "isa95" not in csv_columns()
    assert [(r["value"], r["value_type"]) for r in rows] == [
        ("true", "bool"), ("7", "int"), ("7", "str"), ("", "null"), ("21.5", "float"),
        ('on, "quoted"\nnext line', "str"),
    ]
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert (rows[0]["isa95_site"], rows[3]["isa95_site"]) == ("site-a", "")
    assert rows[0]["gateway_time"] == "2025-03-01T12:00:00Z" and rows[0]["source_time"] == ""
    with JournalReader(written) as reader:
        records = list(reader.read())
    assert [r["hash"] for r in rows] == [r.hash for r in records]
