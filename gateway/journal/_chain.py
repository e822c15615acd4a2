"""The canonical encoding of a journal record and its hash. Pure functions: no I/O, no clock.

What is hashed
--------------
Each row of the journal stores ``payload``, the exact bytes that were hashed, and
``hash = sha256(payload).hexdigest()`` (64 lower-case hex digits). ``payload`` is one JSON object:

* every field of :class:`~gateway.records.ProcessRecord` except ``hash``, i.e. the draft's fields
  plus ``gateway_id``, ``seq`` and ``prev_hash``; absent optional values are ``null``, never omitted,
  except the fields added after schema 1 (:data:`~gateway.records.OMITTED_WHEN_NULL`: ``result_key``,
  ``corrects``), which are left out when null so that a record without them hashes as before;
* plus ``raw_sha256``: the lower-case hex sha256 of the raw wire bytes kept beside the record,
  or ``null`` when the reading had none (``b""`` is not ``None``: it hashes to ``e3b0c4…``).

``prev_hash`` is the ``hash`` of the record at ``seq - 1``; the first record (``seq`` 1) has
:data:`GENESIS_HASH`, 64 zeros. So the chain covers the parsed record, its position and, through
``raw_sha256``, the original bytes.

The bytes are UTF-8 JSON as ``orjson.dumps(obj, option=OPT_SORT_KEYS | OPT_UTC_Z)`` writes them:
keys sorted, no whitespace, no trailing newline, non-ASCII text as UTF-8 (not ``\\u`` escapes),
enums as their values, ``isa95`` as a nested object, floats in their shortest round-trip form,
datetimes as RFC 3339 with ``Z`` for a zero offset and the device's offset otherwise
(``2025-03-01T12:00:00.123456Z``, ``2025-03-01T14:00:00+02:00``; the fraction is left out when
zero). That is byte for byte ``orjson.dumps(record.model_dump(mode="json", exclude={"hash"}) |
{"raw_sha256": …}, option=OPT_SORT_KEYS)`` (``model_dump`` leaves those later fields out when null
too), computed without the model_dump for speed (the tests hold the two equal). The journal refuses
what it cannot write exactly: non-finite floats (JSON has no NaN) and datetimes whose UTC offset is
not whole minutes (both encoders would shift the instant).

Checking a journal needs none of that: an external verifier takes the stored ``payload`` bytes,
checks ``sha256(payload) == hash``, parses the JSON and checks ``seq``, ``prev_hash`` and
``raw_sha256`` against its neighbours and the raw column. The encoding rules above matter only to
re-derive a payload from a record received elsewhere (see :func:`record_hash`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from gateway.errors import IntegrityError
from gateway.records import OMITTED_WHEN_NULL, ProcessRecord, RecordDraft

#: ``prev_hash`` of the first record of every journal.
GENESIS_HASH = "0" * 64

#: The one member of a payload that is not a ProcessRecord field.
RAW_DIGEST_KEY = "raw_sha256"

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z
_sha256 = hashlib.sha256


def raw_digest(raw: bytes | None) -> str | None:
    """The ``raw_sha256`` member of a payload: hex sha256 of the wire bytes, ``None`` for none."""
    return None if raw is None else hashlib.sha256(raw).hexdigest()


def draft_body(draft: RecordDraft, raw: bytes | None) -> dict[str, Any]:
    """A draft's fields as the dict the writer completes with ``gateway_id``, ``seq``, ``prev_hash``.

    The one-record form of :func:`draft_bodies`.
    """
    return draft_bodies([(draft, raw)])[0][0]


def draft_bodies(items: Sequence[tuple[RecordDraft, bytes | None]]) -> list[tuple[dict[str, Any], bytes | None]]:
    """The bodies of one append's drafts (see :func:`draft_body`), each with its raw bytes.

    Runs in the appender, before the records are queued, so a draft the journal cannot store
    exactly fails its own caller with ValueError instead of the transaction it would have shared.
    The drafts were validated when they were built; this only copies their fields (a pydantic
    model keeps them in ``__dict__``), which costs a tenth of a ``model_dump``. The readings of one
    device read share their timestamps and equipment, so each moment's offset is checked once and
    ``isa95`` is handed to the encoder as the plain dict it encodes to.
    """
    out: list[tuple[dict[str, Any], bytes | None]] = []
    checked: set[int] = set()  # ids of the moments already checked, alive as long as their drafts
    for draft, raw in items:
        if type(draft) is not RecordDraft:
            _refuse_kind(draft)
        body = draft.__dict__.copy()
        for name in ("value", "clock_offset_s"):
            number = body[name]
            if type(number) is float and not math.isfinite(number):
                raise ValueError(
                    f"{draft.equipment_id} {draft.parameter}: {name} is {number}, which JSON cannot hold; "
                    "journal it as None with a Bad quality and say why in detail"
                )
        for name in ("gateway_time", "source_time", "server_time"):
            moment = body[name]
            if moment is None or id(moment) in checked:
                continue
            offset = moment.utcoffset()
            if offset is not None and (offset.seconds % 60 or offset.microseconds):
                raise ValueError(
                    f"{draft.equipment_id} {draft.parameter}: {name} has UTC offset {offset}, not whole minutes; "
                    "RFC 3339 cannot hold it: convert it to UTC first"
                )
            checked.add(id(moment))
        place = body["isa95"]
        if isinstance(place, BaseModel):
            body["isa95"] = place.__dict__
        for name in OMITTED_WHEN_NULL:
            if body.get(name, 0) is None:
                del body[name]
        body[RAW_DIGEST_KEY] = None if raw is None else _sha256(raw).hexdigest()
        out.append((body, raw))
    return out


def _refuse_kind(draft: object) -> None:
    """A committed record or anything but a draft cannot be appended (a draft subclass can)."""
    if isinstance(draft, ProcessRecord):
        raise ValueError(f"seq {draft.seq} is already committed: append takes RecordDrafts")
    if not isinstance(draft, RecordDraft):
        raise TypeError(f"append takes (RecordDraft, bytes | None) pairs, not {type(draft).__name__}")


def _omit_nulls(body: dict[str, Any]) -> None:
    """Leave out the fields added after schema 1 when they are null (records without them hash as before)."""
    for name in OMITTED_WHEN_NULL:
        if body.get(name, 0) is None:
            del body[name]


def encode_payload(body: dict[str, Any]) -> bytes:
    """The canonical bytes of a complete body (every member but ``hash``)."""
    return orjson.dumps(body, default=_nested_model, option=_OPTIONS)


def json_time(moment: datetime) -> str:
    """A datetime exactly as it appears in a payload (for the indexed ``gateway_time`` column)."""
    return orjson.dumps(moment, option=_OPTIONS)[1:-1].decode()


def payload_hash(payload: bytes) -> str:
    """The ``hash`` of a record: hex sha256 of its payload bytes."""
    return hashlib.sha256(payload).hexdigest()


def record_hash(record: ProcessRecord, raw: bytes | None) -> str:
    """Recompute a committed record's hash from the record and its raw bytes.

    For a receiver that got the record as data (an MES, an export) and wants to check it against
    the chain without the journal file. Equal to ``record.hash`` when nothing was changed.
    """
    body = record.__dict__.copy()
    del body["hash"]
    _omit_nulls(body)
    body[RAW_DIGEST_KEY] = raw_digest(raw)
    return payload_hash(encode_payload(body))


def _nested_model(value: object) -> dict[str, Any]:
    """orjson's hook for what it cannot encode natively: a nested model (``isa95``) as its fields."""
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(f"cannot encode {type(value).__name__}")


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
