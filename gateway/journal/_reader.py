"""Reading committed records: for sinks, the local API, export and the CLI.

A reader has its own read-only connection, so it never blocks the writer and sees only committed
transactions (WAL snapshot isolation: each iteration reads one consistent snapshot). Blocking I/O:
call it from a thread, not the event loop, when the result is large. A reader may be handed from
thread to thread; use one reader per thread at a time.

Readers rebuild records from the stored payloads but do not check the chain: that is
:func:`~gateway.journal.verify`'s job. While an iteration is unfinished it holds its snapshot,
which keeps the WAL from being checkpointed past it: read large ranges in ``limit`` sized pages.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, TypeVar

from gateway.errors import JournalError
from gateway.journal._audit import read_entries
from gateway.journal._chain import record_from_payload
from gateway.journal._schema import (
    EVENTS_CONDITION,
    connect_reader,
    has_column,
    has_table,
    read_cursors,
    read_head,
    read_pruned,
)
from gateway.records import ProcessRecord

#: One stored row as export and verify use it: seq, payload bytes, raw bytes (or None), hash.
Row = tuple[int, bytes, bytes | None, str]

_FETCH = 512


class Resolution(NamedTuple):
    """A flagged record closed by a person: an alarm acknowledged or an identity exception resolved."""

    seq: int
    kind: str
    actor: str
    time: str
    reason: str


class DeadLetter(NamedTuple):
    """A record sink ``sink`` could not deliver because its receiver refused it for good."""

    sink: str
    seq: int
    reason: str
    time: str
_T = TypeVar("_T")


class JournalReader:
    """Read-only access to a journal file, usable while its writer runs (in this or another process)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn, meta = connect_reader(self.path)
        #: The gateway this journal belongs to.
        self.gateway_id: str = meta.get("gateway_id", "")
        #: The journal's meta table (schema_version, gateway_id, created).
        self.meta: dict[str, str] = meta

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection. Idempotent."""
        self._conn.close()

    def read(
        self, since_seq: int = 0, limit: int | None = None, equipment_id: str | None = None
    ) -> Iterator[ProcessRecord]:
        """Committed records with ``seq > since_seq`` in seq order, at most ``limit``, optionally of one
        piece of equipment. ``since_seq`` is exclusive so a sink passes its cursor as it is.
        """
        return self._records(self.rows(since_seq, limit, equipment_id, raw=False))

    def read_raw(
        self, since_seq: int = 0, limit: int | None = None, equipment_id: str | None = None
    ) -> Iterator[tuple[ProcessRecord, bytes | None]]:
        """Like :meth:`read`, each record with the raw wire bytes kept beside it (None when none)."""
        rows = self.rows(since_seq, limit, equipment_id, raw=True)
        return ((record_from_payload(payload, hash_, seq=seq), raw) for seq, payload, raw, hash_ in rows)

    def rows(
        self, since_seq: int = 0, limit: int | None = None, equipment_id: str | None = None, *, raw: bool = True
    ) -> Iterator[Row]:
        """The stored rows themselves, unparsed: for export and tools that want the hashed bytes."""
        if type(since_seq) is not int or since_seq < 0:
            raise ValueError(f"since_seq must be an int >= 0, not {since_seq!r}")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"limit must be None or an int >= 0, not {limit!r}")
        sql = f"SELECT seq, payload, {'raw' if raw else 'NULL'}, hash FROM records WHERE seq > ?"
        params: list[object] = [since_seq]
        if equipment_id is not None:
            sql += " AND equipment_id = ?"
            params.append(equipment_id)
        sql += " ORDER BY seq LIMIT ?"
        params.append(-1 if limit is None else limit)
        return self._iterate(sql, params)

    def last_seq(self) -> int:
        """The last committed seq (0 for an empty journal). Cheap: one index lookup."""
        return self._query(lambda: read_head(self._conn)[0])

    def count(self) -> int:
        """How many records the file holds. Scans the table: equal to last_seq unless rows were removed."""
        return self._query(lambda: int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0]))

    def get_cursor(self, name: str) -> int:
        """The durable cursor of sink ``name`` (0 when it has none)."""
        return self._query(lambda: read_cursors(self._conn)).get(name, 0)

    def cursors(self) -> dict[str, int]:
        """Every sink's durable cursor by name."""
        return self._query(lambda: read_cursors(self._conn))

    def latest(self, window: int = 200_000) -> list[Row]:
        """The last row of each (equipment, parameter) among the last ``window`` records, in seq order.

        For sinks that show current values (an OPC UA server) to start with them after a restart;
        the window bounds the scan on a large journal.
        """
        sql = (
            "SELECT r.seq, r.payload, NULL, r.hash FROM records r JOIN"
            " (SELECT max(seq) AS seq FROM records WHERE seq > ? GROUP BY equipment_id, parameter) m"
            " ON r.seq = m.seq ORDER BY r.seq"
        )
        return self._query(lambda: self._conn.execute(sql, (max(0, read_head(self._conn)[0] - window),)).fetchall())

    def resolutions(self) -> dict[int, Resolution]:
        """Flagged records a person has closed (alarms acknowledged, exceptions resolved), by seq."""
        def query() -> dict[int, Resolution]:
            if not has_table(self._conn, "resolutions"):
                return {}
            rows = self._conn.execute("SELECT seq, kind, actor, time, reason FROM resolutions").fetchall()
            return {int(r[0]): Resolution(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows}

        return self._query(query)

    def of_parameter(
        self, parameter: str, since_seq: int = 0, equipment_id: str | None = None
    ) -> Iterator[ProcessRecord]:
        """Committed records of one parameter in seq order, optionally of one piece of equipment.

        Readings are not indexed by parameter: this walks the records after ``since_seq`` (of
        ``equipment_id`` by its index when given). For events and alarms use :meth:`events_of`.
        """
        sql = "SELECT seq, payload, NULL, hash FROM records WHERE parameter = ? AND seq > ?"
        params: list[object] = [parameter, since_seq]
        if equipment_id is not None:
            sql += " AND equipment_id = ?"
            params.append(equipment_id)
        return self._records(self._iterate(sql + " ORDER BY seq", params))

    def events_of(self, parameter: str, since_seq: int = 0) -> Iterator[ProcessRecord]:
        """Committed events and alarms of one parameter (bindings, exceptions, communication) in seq
        order, by index: fast on a journal of any size."""
        if has_column(self._conn, "records", "kind"):
            sql = f"SELECT seq, payload, NULL, hash FROM records WHERE {EVENTS_CONDITION} AND parameter = ? AND seq > ?"
        else:  # a journal from before version 4, not yet opened by a writer of this version
            sql = "SELECT seq, payload, NULL, hash FROM records WHERE parameter = ? AND seq > ?"
        return self._records(self._iterate(sql + " ORDER BY seq", [parameter, since_seq]))

    @staticmethod
    def _records(rows: Iterator[Row]) -> Iterator[ProcessRecord]:
        return (record_from_payload(payload, hash_, seq=seq) for seq, payload, _, hash_ in rows)

    def first_seq(self) -> int:
        """The first seq the file still holds (1, unless retention pruned older records)."""
        return self._query(lambda: read_pruned(self._conn)[0]) + 1

    def dead_letters(self, sink: str | None = None) -> list[DeadLetter]:
        """Records a receiver refused for good, kept until someone decides; oldest first."""
        def query() -> list[DeadLetter]:
            if not has_table(self._conn, "dead_letters"):
                return []
            sql, params = "SELECT sink, seq, reason, time FROM dead_letters", ()
            if sink is not None:
                sql, params = sql + " WHERE sink = ?", (sink,)
            rows = self._conn.execute(sql + " ORDER BY seq, sink", params).fetchall()
            return [DeadLetter(str(a), int(b), str(c), str(d)) for a, b, c, d in rows]

        return self._query(query)

    def audit(self, since_id: int = 0, limit: int | None = None) -> list[dict[str, object]]:
        """The audit trail's entries after ``since_id`` (each a dict with its ``hash``), oldest first."""
        return self._query(
            lambda: read_entries(self._conn, since_id, -1 if limit is None else limit)
            if has_table(self._conn, "audit") else []
        )

    def _iterate(self, sql: str, params: list[object]) -> Iterator[Row]:
        try:
            cursor = self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read the journal: {exc}") from exc
        try:
            while True:
                try:
                    batch = cursor.fetchmany(_FETCH)
                except sqlite3.Error as exc:
                    raise JournalError(f"{self.path}: cannot read the journal: {exc}") from exc
                if not batch:
                    return
                yield from batch
        finally:
            cursor.close()

    def _query(self, query: Callable[[], _T]) -> _T:
        try:
            return query()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read the journal: {exc}") from exc
