"""Committed records handed to a sink as the journal stored them, so a catch-up skips a JSON round trip.

The journal keeps each record's hashed members as compact JSON with sorted keys, exactly as
``orjson.dumps(body, option=OPT_SORT_KEYS | OPT_UTC_Z)`` writes them. A wire record is those members
followed by ``hash`` and ``delivery``, so its JSON is the stored bytes with the two members spliced in
before the closing brace: byte for byte what ``orjson.dumps`` of the decoded wire dict gives (a test
pins it), for a fraction of the cost of decoding 2 000 records and encoding them again.

A sink that sets the class attribute ``takes_stored = True`` gets its batches' records as
:class:`StoredRecords`: still a sequence of wire dicts (each decoded on first access), which also gives
each record's JSON (:meth:`StoredRecords.json`), a top-level member read from the bytes
(:meth:`StoredRecords.member`) and the whole batch as one JSON array. Every other sink gets plain
dicts, decoded in the forwarder's reader thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

import orjson

from gateway.sinks.base import WireRecord

__all__ = ["UNKNOWN", "StoredRecord", "StoredRecords", "member", "span"]

#: What :func:`member` answers when the bytes alone do not say (the caller decodes the record).
UNKNOWN: Any = object()

_TRUE, _FALSE = b'true}}', b'false}}'
_HASH = b',"hash":"'
_TRUE_NEXT, _FALSE_NEXT = b'","delivery":{"late":true}},', b'","delivery":{"late":false}},'


@dataclass(slots=True)
class StoredRecord:
    """One committed record as read from the journal, with what the forwarder needs before sending it."""

    seq: int
    #: The hashed members as stored: a JSON object, sorted keys, compact.
    payload: bytes
    hash: str
    gateway_time: datetime
    #: The wire dict, decoded in the reader thread for sinks that take dicts; None for ``takes_stored`` sinks.
    record: WireRecord | None = None

    def wire_json(self, late: bool) -> bytes:
        """The wire record's JSON: the stored members, then ``hash`` and ``delivery``."""
        return b"".join((self.payload[:-1], b',"hash":"', self.hash.encode(), b'","delivery":{"late":',
                         _TRUE if late else _FALSE))


def member(payload: bytes, key: str) -> Any:
    """The top-level member ``key`` of a stored payload when the bytes say it plainly, else UNKNOWN.

    Answers strings without escapes, ``null`` and flat objects (``isa95``); anything else (an escaped
    string, a number, an absent key) is UNKNOWN and the caller decodes the record.
    """
    raw = span(payload, key)
    if raw is None:
        return UNKNOWN
    if raw[0] == _QUOTE:
        return raw[1:-1].decode()
    if raw == b"null":
        return None
    try:  # a "}" inside a string cuts an object short, which then is not valid JSON
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNKNOWN


def span(payload: bytes, key: str) -> bytes | None:
    """The JSON text of the top-level member ``key``: a string without escapes, ``null``, or an object up to
    its first ``}``; None for anything else. :func:`member` reads it; as a key, equal texts are equal values
    once one of them has been read (an object's text is cut short only where it then fails to parse).

    ``"key":`` can only match a key: inside a JSON string every quote is escaped, and the only nested
    object of a record (``isa95``: area, site, unit) holds no top-level key name.
    """
    tag = _TAGS.get(key) or f'"{key}":'.encode()
    start = payload.find(tag)
    if start < 0:
        return None
    start += len(tag)
    first = payload[start] if start < len(payload) else None
    if first == _QUOTE:
        end = payload.find(b'"', start + 1) + 1
    elif first == _BRACE:
        end = payload.find(b"}", start) + 1
    elif first == _N and payload.startswith(b"null", start):
        return b"null"
    else:
        return None
    raw = payload[start:end]
    return raw if end > 0 and b"\\" not in raw else None


_QUOTE, _BRACE, _N = ord('"'), ord("{"), ord("n")
#: The members a sink reads from the bytes, as they appear in a payload.
_TAGS = {key: f'"{key}":'.encode() for key in ("equipment_id", "gateway_time", "isa95", "parameter")}


class StoredRecords(Sequence[WireRecord]):
    """A batch's records as stored, with their late marks: wire dicts on access, or their JSON as bytes."""

    __slots__ = ("_late", "_records", "_stored")

    def __init__(self, stored: Sequence[StoredRecord], late: Sequence[bool]) -> None:
        if len(stored) != len(late):
            raise ValueError(f"{len(stored)} records but {len(late)} late marks")
        self._stored = stored
        self._late = late
        self._records: list[WireRecord | None] = [None] * len(stored)

    def __len__(self) -> int:
        return len(self._stored)

    @overload
    def __getitem__(self, index: int) -> WireRecord: ...
    @overload
    def __getitem__(self, index: slice) -> StoredRecords: ...
    def __getitem__(self, index: int | slice) -> WireRecord | StoredRecords:
        if isinstance(index, slice):
            return StoredRecords(self._stored[index], self._late[index])
        record = self._records[index]
        if record is None:
            stored = self._stored[index]
            record = orjson.loads(stored.payload)
            record["hash"] = stored.hash
            record["delivery"] = {"late": self._late[index]}
            self._records[index] = record
        return record

    def __iter__(self) -> Iterator[WireRecord]:
        return (self[i] for i in range(len(self._stored)))

    def json(self, index: int) -> bytes:
        """Record ``index`` as ``orjson.dumps`` would write its wire dict."""
        return self._stored[index].wire_json(self._late[index])

    def json_array(self) -> bytes:
        """Every record, in order, as one JSON array (one join over all the pieces: no copy per record)."""
        parts = [b"["]
        add = parts.extend
        for stored, late in zip(self._stored, self._late, strict=True):
            add((stored.payload[:-1], _HASH, stored.hash.encode(), _TRUE_NEXT if late else _FALSE_NEXT))
        parts[-1] = parts[-1][:-1] if len(parts) > 1 else parts[-1]  # no comma after the last record
        parts.append(b"]")
        return b"".join(parts)

    def seq(self, index: int) -> int:
        return self._stored[index].seq

    def payload(self, index: int) -> bytes:
        """Record ``index``'s hashed members as stored (without ``hash`` and ``delivery``)."""
        return self._stored[index].payload

    def member(self, index: int, key: str) -> Any:
        """A top-level member of record ``index``: read from the bytes when they say it plainly, else decoded."""
        value = member(self._stored[index].payload, key)
        return self[index].get(key) if value is UNKNOWN else value
