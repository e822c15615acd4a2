"""File export of committed records (JSONL, CSV), streamed: memory does not grow with the journal.

Both functions take the journal as a path, an open :class:`Journal` or a :class:`JournalReader`,
write records with ``seq > since_seq`` in seq order, and return how many they wrote. They read one
snapshot through their own read-only connection, so they run beside the writer. Call them from a
thread (or the CLI), not the event loop.

JSONL: one JSON object per line, keys sorted: the record exactly as hashed (the ProcessRecord's
fields and ``raw_sha256``) plus its ``hash``, and ``raw_b64`` (standard base64 of the raw wire
bytes, or null) when asked for. Removing ``hash`` and ``raw_b64`` and encoding the rest as the
journal does gives bytes whose sha256 is ``hash``: an export can be checked without the journal.

CSV (RFC 4180, header row): ``gateway_id, seq``, then the ProcessRecord fields in model order with
``isa95`` flattened to ``isa95_site, isa95_area, isa95_unit`` and ``value_type`` (bool, int, float,
str or null) after ``value`` so that ``"1"`` the string and ``1`` the number stay apart, then
``prev_hash, raw_sha256, hash``. Empty cell = null; booleans are ``true``/``false``; floats and
datetimes as in the JSON. Open the CSV file with ``newline=""``.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, TextIO

import orjson

from gateway.journal._chain import RAW_DIGEST_KEY, parse_payload
from gateway.journal._reader import JournalReader
from gateway.journal._writer import Journal
from gateway.records import Isa95Path, ProcessRecord

#: Where to export from: a journal file path, a running Journal, or a reader (left open).
JournalSource = str | os.PathLike[str] | Journal | JournalReader

_IDENTITY = ("gateway_id", "seq")
_INTEGRITY = ("prev_hash", RAW_DIGEST_KEY, "hash")
_VALUE_TYPES = {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}


def export_jsonl(
    source: JournalSource, out: BinaryIO | TextIO, since_seq: int = 0, *, include_raw: bool = False
) -> int:
    """Write records after ``since_seq`` as JSON lines to ``out`` (a binary or text stream)."""
    text = isinstance(out, io.TextIOBase)
    written = 0
    with _reader(source) as reader:
        for seq, payload, raw, hash_ in reader.rows(since_seq, raw=include_raw):
            body = parse_payload(payload, seq=seq)
            body["hash"] = hash_
            if include_raw:
                body["raw_b64"] = None if raw is None else base64.b64encode(raw).decode("ascii")
            line = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
            out.write(line.decode() if text else line)  # type: ignore[arg-type]
            written += 1
    return written


def export_csv(source: JournalSource, out: TextIO, since_seq: int = 0) -> int:
    """Write records after ``since_seq`` as CSV with a header row to the text stream ``out``."""
    columns = csv_columns()
    writer = csv.writer(out)
    writer.writerow(columns)
    written = 0
    with _reader(source) as reader:
        for seq, payload, _, hash_ in reader.rows(since_seq, raw=False):
            body = parse_payload(payload, seq=seq)
            body["hash"] = hash_
            writer.writerow(csv_row(body, columns))
            written += 1
    return written


def csv_row(record: dict[str, Any], columns: list[str]) -> list[str]:
    """One record (a parsed payload with its ``hash``) as the CSV cells of ``columns``."""
    body = dict(record)
    isa95 = body.pop("isa95", None) or {}
    for key in Isa95Path.model_fields:
        body[f"isa95_{key}"] = isa95.get(key)
    body["value_type"] = _VALUE_TYPES.get(type(body.get("value")), "json")
    return [_cell(body.get(column)) for column in columns]


def csv_columns() -> list[str]:
    """The CSV header, derived from ProcessRecord so a new record field appears by itself."""
    columns = list(_IDENTITY)
    for name in ProcessRecord.model_fields:
        if name in _IDENTITY or name in _INTEGRITY:
            continue
        if name == "isa95":
            columns += [f"isa95_{key}" for key in Isa95Path.model_fields]
        elif name == "value":
            columns += ["value", "value_type"]
        else:
            columns.append(name)
    return [*columns, *_INTEGRITY]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()  # true/false, and the JSON form of numbers
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@contextmanager
def _reader(source: JournalSource) -> Iterator[JournalReader]:
    if isinstance(source, JournalReader):
        yield source
        return
    reader = JournalReader(source.path if isinstance(source, Journal) else source)
    try:
        yield reader
    finally:
        reader.close()
