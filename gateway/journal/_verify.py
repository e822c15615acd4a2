"""Checking a journal file: the chain, the sequence and the raw bytes, without a running gateway.

:func:`verify` walks the records in seq order with bounded memory (one fetch page at a time) and
stops at the first bad one, naming it and saying in one line what is wrong. It reads one snapshot,
so it can run beside the writer. Per record it checks, in this order:

1. the seq follows the previous one (a gap is a deleted record);
2. ``sha256(payload) == hash`` (else the record was edited);
3. the payload parses and its ``seq`` and ``gateway_id`` are this row's and this journal's
   (else records were swapped or moved);
4. its ``prev_hash`` is the previous record's hash (else something before it was altered,
   reordered or inserted and the hashes recomputed);
5. ``sha256(raw)`` is the ``raw_sha256`` the record carries (else the raw bytes were edited);
6. the indexed columns equal the payload's members (else the row was edited around the payload).

What it cannot see by itself: records cut from the tail (a shorter chain is still a valid chain).
Write down ``last_seq`` and ``head_hash`` when reviewing, and pass them back later as ``anchor``.
Sink cursors beyond the last record are reported too, since a sink cannot have taken a record
the journal never held.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import IntegrityError, JournalError
from gateway.journal._audit import check_trail
from gateway.journal._chain import RAW_DIGEST_KEY, parse_payload, payload_hash, raw_digest
from gateway.journal._schema import INDEXED_KINDS, connect_reader, has_column, has_table, read_cursors, read_pruned

_FETCH = 1000
_TAIL_NOTE = (
    "records cut from the tail leave a valid shorter chain: compare last_seq and head_hash with a head "
    "written down earlier, or pass it as anchor=(seq, hash)"
)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of :func:`verify`. ``last_seq``/``head_hash`` are those of the last good record."""

    path: str
    gateway_id: str
    ok: bool
    #: Records found good, from seq 1 up to the first bad one.
    records_checked: int
    first_bad_seq: int | None
    #: One readable line saying what is wrong at first_bad_seq (None when ok).
    reason: str | None
    last_seq: int
    head_hash: str
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.ok:
            return (
                f"{self.path}: OK, {self.records_checked} records of gateway {self.gateway_id!r}, "
                f"head seq {self.last_seq} hash {self.head_hash}"
            )
        where = "" if self.first_bad_seq is None else f" at seq {self.first_bad_seq}"
        return f"{self.path}: BROKEN{where}: {self.reason}"

    def __str__(self) -> str:
        return self.summary()

    def raise_for_status(self) -> None:
        """Raise IntegrityError (with ``seq`` = first_bad_seq) unless the journal is intact."""
        if not self.ok:
            raise IntegrityError(self.summary(), seq=self.first_bad_seq)


def verify(path: str | os.PathLike[str], *, anchor: tuple[int, str] | None = None) -> VerifyReport:
    """Check a journal file end to end and report the first bad record; never modifies the file.

    ``anchor`` is a ``(seq, hash)`` recorded earlier (a previous report's head): the journal must
    still hold that record with that hash, which also catches a cut tail. Raises JournalError only
    when the file cannot be read as a journal at all; a broken chain is a report with ``ok=False``.
    """
    file = Path(path)
    conn, meta = connect_reader(file)
    try:
        conn.execute("BEGIN")  # one snapshot for records and cursors
        return _walk(conn, file, meta.get("gateway_id", ""), anchor)
    except sqlite3.Error as exc:
        raise JournalError(f"{file}: cannot read the journal: {exc}") from exc
    finally:
        conn.close()


def _walk(conn: sqlite3.Connection, file: Path, gateway_id: str, anchor: tuple[int, str] | None) -> VerifyReport:
    def report(bad_seq: int | None, reason: str | None, notes: tuple[str, ...] = ()) -> VerifyReport:
        return VerifyReport(
            path=str(file), gateway_id=gateway_id, ok=reason is None, records_checked=expected - 1 - pruned,
            first_bad_seq=bad_seq, reason=reason, last_seq=expected - 1, head_hash=prev_hash, notes=notes,
        )

    pruned, prev_hash = read_pruned(conn)
    expected = pruned + 1
    notes: list[str] = []
    if pruned:
        notes.append(f"records 1 to {pruned} were pruned under retention; the chain is checked from seq {expected}")
    has_kind = has_column(conn, "records", "kind")  # version 4 on
    cursor = conn.execute(
        f"SELECT seq, gateway_time, equipment_id, parameter, payload, raw, hash, {'kind' if has_kind else 'NULL'}"
        " FROM records ORDER BY seq"
    )
    while batch := cursor.fetchmany(_FETCH):
        for row in batch:
            bad = _check(row, expected, prev_hash, gateway_id, has_kind)
            if bad is not None:
                return report(*bad)
            seq, hash_ = row[0], row[6]
            if anchor is not None and seq == anchor[0] and hash_ != anchor[1]:
                return report(seq, f"seq {seq}: hash {hash_} is not the recorded {anchor[1]} (journal rewritten)")
            expected, prev_hash = seq + 1, hash_
    last = expected - 1
    if anchor is not None and 0 < anchor[0] <= pruned:
        mark = read_pruned(conn)[1]
        if anchor[0] == pruned and anchor[1] != mark:
            return report(pruned, f"seq {pruned}: pruned-through hash {mark} is not the recorded {anchor[1]}")
        if anchor[0] < pruned:
            notes.append(f"anchor seq {anchor[0]} was pruned; only the chain from seq {expected - 1} on is checked")
    if anchor is not None and anchor[0] > last:
        missing = f"records after {last} are missing"
        return report(last + 1, f"the journal ends at seq {last} but seq {anchor[0]} was recorded: {missing}")
    for name, seq in sorted(read_cursors(conn).items()):
        if seq > last:
            ends = f"the journal ends at seq {last}: records after {last} are missing"
            return report(last + 1, f"sink cursor {name!r} is at seq {seq} but {ends}")
    if has_table(conn, "audit"):
        entries, broken = check_trail(conn)
        if broken is not None:
            return report(None, f"audit trail: {broken}")
        notes.append(f"audit trail intact ({entries} entries)")
    if anchor is None:
        notes.append(_TAIL_NOTE)
    return report(None, None, tuple(notes))


def _check(
    row: tuple[Any, ...], expected: int, prev_hash: str, gateway_id: str, has_kind: bool
) -> tuple[int, str] | None:
    """``(bad_seq, reason)`` for the first thing wrong with this row, or None."""
    seq, gateway_time, equipment_id, parameter, payload, raw, hash_, kind = row
    if seq != expected:
        if expected == 1:
            return 1, f"seq 1 missing (the journal starts at seq {seq})"
        missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected} to {seq - 1}"
        return expected, f"{missing} missing ({expected - 1} is followed by {seq})"
    if isinstance(payload, str):  # SQL text functions turn an edited BLOB into TEXT
        payload = payload.encode()
    if not isinstance(payload, bytes) or payload_hash(payload) != hash_:
        return seq, f"seq {seq}: hash does not match its content (record edited)"
    try:
        body = parse_payload(payload, seq=seq)
    except IntegrityError as exc:
        return seq, f"{exc} (unparseable record)"
    if body.get("seq") != seq:
        return seq, f"seq {seq}: the record stored here is seq {body.get('seq')!r} (records reordered or moved)"
    if body.get("gateway_id") != gateway_id:
        return seq, f"seq {seq}: the record is of gateway {body.get('gateway_id')!r}, the journal of {gateway_id!r}"
    if body.get("prev_hash") != prev_hash:
        return seq, (
            f"seq {seq}: prev_hash does not match seq {seq - 1} (a record was altered, reordered or inserted)"
        )
    if isinstance(raw, str):
        raw = raw.encode()
    if RAW_DIGEST_KEY not in body or raw_digest(raw) != body[RAW_DIGEST_KEY]:
        change = "removed" if raw is None else "added" if body.get(RAW_DIGEST_KEY) is None else "edited"
        return seq, f"seq {seq}: raw bytes do not match the digest in the record (raw {change})"
    for column, value in (("gateway_time", gateway_time), ("equipment_id", equipment_id), ("parameter", parameter)):
        if body.get(column) != value:
            return seq, f"seq {seq}: column {column} is {value!r} but the record says {body.get(column)!r} (row edited)"
    if has_kind and not _kind_matches(kind, body.get("kind")):
        return seq, f"seq {seq}: column kind is {kind!r} but the record says {body.get('kind')!r} (row edited)"
    return None


def _kind_matches(column: str | None, recorded: object) -> bool:
    """Rows from before journal version 4 carry their kind only when they are events or alarms (the
    ones the index by parameter holds); a NULL on an event would hide it from that index."""
    if column is None:
        return recorded not in INDEXED_KINDS
    return column == recorded
