"""The writer's side of SQLite: everything that runs on the journal's single writer thread.

Each call here is one hop from the event loop and, for appends, one whole transaction:
``BEGIN IMMEDIATE``, read the head, number and hash the batch, ``executemany``, ``COMMIT``. Numbering
and hashing happen inside the transaction, from the head read inside it, so the chain always
continues from what is on disk: a failed transaction leaves no gap and no fork, whatever failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from gateway.errors import JournalError
from gateway.journal import _schema
from gateway.journal._audit import AuditEntry, append_entries
from gateway.journal._chain import encode_payload, json_time, payload_hash
from gateway.journal._lock import JournalLock
from gateway.records import utc_now

log = structlog.get_logger(__name__)

Head = tuple[int, str]
_Row = tuple[int, str, str, str, bytes, bytes | None, str, str]
#: One record as an appender hands it to the writer: the draft's fields, and its raw bytes.
Prepared = tuple[dict[str, Any], bytes | None]


@dataclass(slots=True)
class EntryCommitted:
    """Where one append call's records landed: seqs ``first_seq…`` and their hashes in order."""

    first_seq: int
    prev_hash: str
    hashes: list[str]


@dataclass(slots=True)
class BatchOutcome:
    """What one transaction did. ``error`` set means nothing of it was committed."""

    results: list[EntryCommitted | ValueError] = field(default_factory=list)
    head: Head | None = None  # None: unknown after a failure; the next transaction reads it
    rows: int = 0
    error: JournalError | None = None


class WriterStore:
    """The one read-write connection. Not thread-safe: used only from the writer's executor thread."""

    def __init__(
        self, path: Path, gateway_id: str, synchronous: _schema.Synchronous, min_free_bytes: int = 0
    ) -> None:
        self._path = path
        self._gateway_id = gateway_id
        self._synchronous = synchronous
        self._min_free_bytes = min_free_bytes
        self._conn: sqlite3.Connection | None = None
        self._lock: JournalLock | None = None

    def open(self) -> tuple[Head, dict[str, int]]:
        """Take the writer lock, open or create the file; return its head and the sinks' cursors."""
        self._lock = JournalLock.acquire(self._path)  # refuses a second writer before it touches the file
        try:
            self._conn = _schema.connect_writer(self._path, self._gateway_id, self._synchronous)
        except BaseException:
            self.close()
            raise
        try:
            return _schema.read_head(self._conn), _schema.read_cursors(self._conn)
        except sqlite3.Error as exc:
            self.close()
            raise JournalError(f"{self._path}: cannot read the journal head: {exc}") from exc

    def close(self) -> None:
        """Close the connection, then let the next writer in."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def commit(
        self,
        entries: list[list[Prepared]],
        expected: Head | None,
        audits: Sequence[Sequence[AuditEntry]] = (),
    ) -> BatchOutcome:
        """Number, hash and durably insert the entries (one per append call) in one transaction.

        ``expected`` is the head the writer last saw; if the file's head differs, another process
        wrote to the journal and the transaction is refused (the next one continues from the file): a
        second line of defence behind the writer lock, for a writer that ignores the lock.
        An entry whose body cannot be encoded fails alone with ValueError and takes no seq.
        ``audits`` (one list per entry) go into the audit trail in the same transaction, each with
        the ``first_seq`` of its entry's records in its detail.
        """
        conn = self._connection()
        outcome = BatchOutcome()
        rows: list[_Row] = []
        intended: Head | None = None
        refusal = self._below_floor()
        if refusal is not None:
            return BatchOutcome(head=expected, error=refusal)
        try:
            conn.execute("BEGIN IMMEDIATE")
            head = _schema.read_head(conn)
            if expected is not None and head != expected:
                raise JournalError(
                    f"{self._path}: the journal's head is seq {head[0]} but this writer last wrote seq "
                    f"{expected[0]}: another process is writing to this journal; stop it"
                )
            intended = self._number(entries, head, rows, outcome.results)
            conn.executemany(_schema.INSERT_RECORD, rows)
            trail = [
                dataclasses.replace(entry, detail={**entry.detail, "first_seq": result.first_seq})
                for result, entry_audits in zip(outcome.results, audits, strict=False)
                if isinstance(result, EntryCommitted)
                for entry in entry_audits
            ]
            if trail:
                append_entries(conn, trail)
            conn.execute("COMMIT")
        except (sqlite3.Error, JournalError) as exc:
            return self._failed(conn, exc, outcome, len(rows), intended)
        outcome.head = intended
        outcome.rows = len(rows)
        return outcome

    def _number(
        self,
        entries: list[list[Prepared]],
        head: Head,
        rows: list[_Row],
        results: list[EntryCommitted | ValueError],
    ) -> Head:
        """Give each record its seq, prev_hash and hash after ``head``; return the new head.

        Fills ``rows`` (to insert) and ``results`` (one per entry). An entry that cannot be encoded
        is left out whole and takes no seq.
        """
        seq, prev = head[0] + 1, head[1]
        moment, moment_text = None, ""  # the readings of one device read share their gateway_time
        gateway_id, encode, digest = self._gateway_id, encode_payload, payload_hash
        for entry in entries:
            start, first_seq, first_prev = len(rows), seq, prev
            hashes: list[str] = []
            try:
                for body, raw in entry:
                    body["gateway_id"] = gateway_id
                    body["seq"] = seq
                    body["prev_hash"] = prev
                    payload = encode(body)
                    prev = digest(payload)
                    if body["gateway_time"] is not moment:
                        moment = body["gateway_time"]
                        moment_text = json_time(moment)
                    rows.append(
                        (seq, moment_text, body["equipment_id"], body["parameter"], payload, raw, prev, body["kind"])
                    )
                    hashes.append(prev)
                    seq += 1
            except orjson.JSONEncodeError as exc:
                del rows[start:]
                seq, prev = first_seq, first_prev
                results.append(ValueError(f"record {len(hashes) + 1} of this append cannot be encoded: {exc}"))
                continue
            results.append(EntryCommitted(first_seq, first_prev, hashes))
        return seq - 1, prev

    def settle(self, name: str, seq: int, rejected: Sequence[tuple[int, str]] = ()) -> None:
        """Durably move a sink's cursor to ``seq``, dead-lettering ``rejected`` ``(seq, reason)`` on the way.

        One transaction: the dead letters, their audit entries and the cursor move land together or
        not at all. Refused beyond the last committed record.
        """
        with self._transaction(f"store cursor {name!r}") as conn:
            last = _schema.read_head(conn)[0]
            if seq > last:
                raise ValueError(f"cursor {name!r}: seq {seq} is beyond the last committed record ({last})")
            if rejected:
                now = utc_now().isoformat()
                conn.executemany(
                    "INSERT OR IGNORE INTO dead_letters (sink, seq, reason, time) VALUES (?, ?, ?, ?)",
                    [(name, s, reason, now) for s, reason in rejected],
                )
                append_entries(conn, [
                    AuditEntry("delivery.rejected", f"{name} seq {s}", reason, {"cursor": name, "seq": s})
                    for s, reason in rejected
                ])
            conn.execute(_schema.UPSERT_CURSOR, (name, seq, utc_now().isoformat()))

    def resolve(self, seq: int, kind: str, parameters: Sequence[str], entry: AuditEntry) -> None:
        """Record that a person closed the flagged record ``seq`` (an alarm, an exception), with its audit entry.

        ValueError when there is no such record, it is not of ``parameters``' kind, or it is already closed.
        """
        with self._transaction(f"record the resolution of seq {seq}") as conn:
            row = conn.execute("SELECT parameter, payload FROM records WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                raise ValueError(f"no record with seq {seq}")
            body = orjson.loads(row[1])
            if (kind == "alarm" and body.get("kind") != "alarm") or (kind != "alarm" and row[0] not in parameters):
                raise ValueError(f"seq {seq} is a {body.get('kind')} record of {row[0]!r}, not an open {kind}")
            done = conn.execute("SELECT actor, time FROM resolutions WHERE seq = ?", (seq,)).fetchone()
            if done is not None:
                raise ValueError(f"seq {seq} was already closed by {done[0]} at {done[1]}")
            conn.execute(
                "INSERT INTO resolutions (seq, kind, actor, time, reason) VALUES (?, ?, ?, ?, ?)",
                (seq, kind, entry.actor, utc_now().isoformat(), entry.reason or ""),
            )
            append_entries(conn, [entry])

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit trail in a transaction of their own."""
        with self._transaction("write the audit trail") as conn:
            append_entries(conn, entries)

    def prune(self, through_seq: int, before: str, max_rows: int) -> int:
        """Remove up to ``max_rows`` of the oldest records: only seqs <= ``through_seq`` (what every sink
        has taken), older than ``before`` (a ``gateway_time`` prefix, whole seconds), never the last record
        and never one at or after a dead letter still kept. Returns how many were removed.

        The chain stays checkable: meta keeps the seq and hash of the last removed record, where
        verify starts, and the audit trail records the prune in the same transaction.
        """
        with self._transaction("prune the journal") as conn:
            start = _schema.read_pruned(conn)[0]
            limit = min(through_seq, _schema.read_head(conn)[0] - 1, start + max_rows)
            (held,) = conn.execute("SELECT min(seq) FROM dead_letters").fetchone()
            if held is not None:
                limit = min(limit, int(held) - 1)
            (newer,) = conn.execute(
                "SELECT min(seq) FROM records WHERE seq > ? AND seq <= ? AND gateway_time >= ?", (start, limit, before)
            ).fetchone()
            if newer is not None:
                limit = int(newer) - 1
            if limit <= start:
                return 0
            (hash_,) = conn.execute("SELECT hash FROM records WHERE seq = ?", (limit,)).fetchone()
            removed = conn.execute("DELETE FROM records WHERE seq <= ?", (limit,)).rowcount
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("pruned_through_seq", str(limit)), ("pruned_through_hash", hash_)],
            )
            append_entries(conn, [AuditEntry(
                "journal.pruned", f"records {start + 1}..{limit}", "older than the retention window and forwarded",
                {"first_seq": start + 1, "last_seq": limit, "last_hash": hash_, "before": before, "removed": removed},
            )])
            return removed

    def _below_floor(self) -> JournalError | None:
        """A refusal when free disk is under the floor: loud, and before anything is half-written."""
        if not self._min_free_bytes:
            return None
        try:
            free = shutil.disk_usage(self._path.parent).free
        except OSError:
            return None  # the commit itself will say what is wrong with the disk
        if free >= self._min_free_bytes:
            return None
        return JournalError(
            f"{self._path}: only {free / 1e6:.1f} MB free, below the journal's floor of "
            f"{self._min_free_bytes / 1e6:g} MB: refusing new records; free disk space or lower journal.min_free_mb"
        )

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any error rolls back, and an SQLite one says what could not be done."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"{self._path}: cannot {what}: {exc}") from exc
            raise

    def _failed(
        self, conn: sqlite3.Connection, exc: Exception, outcome: BatchOutcome, rows: int, intended: Head | None
    ) -> BatchOutcome:
        """Roll back, then find out what is on disk: a COMMIT can fail after the data was made durable."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            head: Head | None = _schema.read_head(conn)
        except sqlite3.Error as again:
            log.error("journal head unreadable after a failed transaction", path=str(self._path), error=str(again))
            head = None
        if rows and intended is not None and head == intended:
            log.warning("journal COMMIT reported an error but the transaction is on disk", error=str(exc))
            outcome.head, outcome.rows = head, rows
            return outcome
        error = exc if isinstance(exc, JournalError) else JournalError(f"{self._path}: journal write failed: {exc}")
        if error is not exc:
            error.__cause__ = exc
        return BatchOutcome(head=head, error=error)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"{self._path}: the journal is not open")
        return self._conn
