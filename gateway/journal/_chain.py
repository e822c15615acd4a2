"""The canonical encoding of a journal record and its hash. Pure functions: no I/O, no clock.

What is hashed
--------------
Each row of the journal stores ``payload``, the exact bytes that were hashed, and
``hash = sha256(payload).hexdigest()`` (64 lower-case hex digits). ``payload`` is one JSON object:

* every field of :class:`~gateway.records.ProcessRecord` except ``hash``, i.e. the draft's fields
  plus ``gateway_id``, ``seq`` and ``prev_hash``; absent optional values are ``null``, never omitted;
* plus ``raw_sha256``: the lower-case hex sha256 of the raw wire bytes kept beside the record,
  or ``null`` when the reading had none (``b""`` is not ``None``: it hashes to ``e3b0c4…``).

``prev_hash`` is the ``hash`` of the record at ``seq - 1``; the first record (``seq`` 1) has
:data:`GENESIS_HASH`, 64 zeros. So the chain covers the parsed record, its position and, through
``raw_sha256``, the original bytes.

The bytes are UTF-8 JSON as ``orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)`` writes them from
``draft.model_dump(mode="json")``: keys sorted, no whitespace, no trailing newline, non-ASCII text
as UTF-8 (not ``\\u`` escapes), enums as their values, datetimes as pydantic writes them in JSON mode
(``2025-03-01T12:00:00.123456Z``; fraction left out when zero; a non-UTC offset kept as ``+02:00``),
floats in their shortest round-trip form. Non-finite floats are refused (JSON has no NaN).

Checking a journal needs none of that: an external verifier takes the stored ``payload`` bytes,
checks ``sha256(payload) == hash``, parses the JSON and checks ``seq``, ``prev_hash`` and
``raw_sha256`` against its neighbours and the raw column. The encoding rules above matter only to
re-derive a payload from a record received elsewhere (see :func:`record_hash`).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from gateway.errors import IntegrityError
from gateway.records import ProcessRecord, RecordDraft

#: ``prev_hash`` of the first record of every journal.
GENESIS_HASH = "0" * 64

#: The one member of a payload that is not a ProcessRecord field.
RAW_DIGEST_KEY = "raw_sha256"

_SORT = orjson.OPT_SORT_KEYS


def raw_digest(raw: bytes | None) -> str | None:
    """The ``raw_sha256`` member of a payload: hex sha256 of the wire bytes, ``None`` for none."""
    return None if raw is None else hashlib.sha256(raw).hexdigest()


def draft_body(draft: RecordDraft, raw: bytes | None) -> dict[str, Any]:
    """A draft as the JSON-ready dict the writer completes with ``gateway_id``, ``seq``, ``prev_hash``.

    Runs in the appender, before the record is queued, so a draft the journal cannot store fails
    its own caller with ValueError instead of the transaction it would have shared with others.
    """
    if isinstance(draft, ProcessRecord):
        raise ValueError(f"seq {draft.seq} is already committed: append takes RecordDrafts")
    if not isinstance(draft, RecordDraft):
        raise TypeError(f"append takes (RecordDraft, bytes | None) pairs, not {type(draft).__name__}")
    for name in ("value", "clock_offset_s"):
        number = getattr(draft, name)
        if type(number) is float and not math.isfinite(number):
            raise ValueError(
                f"{draft.equipment_id} {draft.parameter}: {name} is {number}, which JSON cannot hold; "
                "journal it as None with a Bad quality and say why in detail"
            )
    body = draft.model_dump(mode="json")
    body[RAW_DIGEST_KEY] = raw_digest(raw)
    return body


def encode_payload(body: dict[str, Any]) -> bytes:
    """The canonical bytes of a complete body (every member but ``hash``)."""
    return orjson.dumps(body, option=_SORT)


def payload_hash(payload: bytes) -> str:
    """The ``hash`` of a record: hex sha256 of its payload bytes."""
    return hashlib.sha256(payload).hexdigest()


def record_hash(record: ProcessRecord, raw: bytes | None) -> str:
    """Recompute a committed record's hash from the record and its raw bytes.

    For a receiver that got the record as data (an MES, an export) and wants to check it against
    the chain without the journal file. Equal to ``record.hash`` when nothing was changed.
    """
    body = record.model_dump(mode="json", exclude={"hash"})
    body[RAW_DIGEST_KEY] = raw_digest(raw)
    return payload_hash(encode_payload(body))


def parse_payload(payload: bytes, *, seq: int) -> dict[str, Any]:
    """The JSON object of a stored payload; IntegrityError naming the row if it is not one."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise IntegrityError(f"seq {seq}: payload is not JSON ({exc})", seq=seq) from exc
    if not isinstance(body, dict):
        raise IntegrityError(f"seq {seq}: payload is not a JSON object", seq=seq)
    return body


def record_from_payload(payload: bytes, hash_: str, *, seq: int) -> ProcessRecord:
    """Rebuild the committed ProcessRecord of a row. Does not check the chain: that is verify's job."""
    body = parse_payload(payload, seq=seq)
    if body.get("seq") != seq:
        raise IntegrityError(f"seq {seq}: payload says seq {body.get('seq')!r} (run verify)", seq=seq)
    body.pop(RAW_DIGEST_KEY, None)
    body["hash"] = hash_
    try:
        return ProcessRecord.model_validate(body)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise IntegrityError(f"seq {seq}: payload is not a valid record: {exc}", seq=seq) from exc
