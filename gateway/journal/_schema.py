"""The journal's SQLite file: schema, version checks and connections. Blocking: call from a thread.

One file, WAL mode. ``meta`` says which gateway the journal belongs to and which schema it has;
``records`` is the chain (``payload`` and ``hash`` are the truth, the other columns are copies of
payload members kept for indexed reads and checked by verify; only events and alarms are indexed by
parameter: an index over every reading doubled the cost of a row); ``cursors`` holds one position per
sink; ``dead_letters`` the records a sink's receiver refused for good (kept until someone decides);
``audit`` the hash-chained trail of who did what and why (a binding, a refusal, a prune);
``resolutions`` the alarms acknowledged and identity exceptions resolved, by whom and why. When retention
pruned the oldest records, meta ``pruned_through_seq`` / ``pruned_through_hash`` say where the chain
now starts. Schema changes bump :data:`JOURNAL_SCHEMA_VERSION` and add a migration here.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from gateway.errors import JournalError
from gateway.journal._chain import GENESIS_HASH
from gateway.records import utc_now

#: Version of the file layout below (not of the record, which has its own ``schema_version``).
JOURNAL_SCHEMA_VERSION = 4

#: ``PRAGMA application_id``: "CGTJ", so tools can tell a journal from another SQLite file.
APPLICATION_ID = 0x4347544A

Synchronous = Literal["full", "normal", "extra"]
#: The PRAGMA synchronous value SQLite reports back for each mode.
_SYNC_LEVELS: Mapping[str, int] = {"normal": 1, "full": 2, "extra": 3}

#: The kinds of record the journal indexes by parameter: few, and the ones looked up by parameter.
INDEXED_KINDS = ("event", "alarm")
_KINDS_SQL = f"({', '.join(repr(kind) for kind in INDEXED_KINDS)})"
#: The partial index's condition; a query must repeat it word for word for SQLite to use the index.
EVENTS_CONDITION = f"kind IN {_KINDS_SQL}"

_DDL = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE records ("
    " seq INTEGER PRIMARY KEY,"
    " gateway_time TEXT NOT NULL,"
    " equipment_id TEXT NOT NULL,"
    " parameter TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " raw BLOB,"
    " hash TEXT NOT NULL)",
    "CREATE INDEX records_equipment ON records (equipment_id, seq)",
    "CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated TEXT NOT NULL) WITHOUT ROWID",
)

#: What each schema version added; an older file gets the rest on its first open by a writer.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "CREATE TABLE dead_letters ("
        " sink TEXT NOT NULL, seq INTEGER NOT NULL, reason TEXT NOT NULL, time TEXT NOT NULL,"
        " PRIMARY KEY (sink, seq)) WITHOUT ROWID",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, time TEXT NOT NULL, action TEXT NOT NULL,"
        " payload BLOB NOT NULL, hash TEXT NOT NULL)",
    ),
    3: (
        # alarms acknowledged and identity exceptions resolved: a person closes a flagged record with a reason
        "CREATE TABLE resolutions (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, actor TEXT NOT NULL,"
        " time TEXT NOT NULL, reason TEXT NOT NULL)",
        "CREATE INDEX records_parameter ON records (parameter, seq)",
    ),
    4: (
        # the record's kind as a column, so that only the rare records (events, alarms: bindings,
        # exceptions, communication losses) are indexed by parameter: with every reading in that index
        # each transaction rewrote one index page per parameter, twice the cost of the row itself.
        # Older rows get their kind only when they are events or alarms (NULL otherwise), so the
        # upgrade rewrites the few rows the index needs, not the whole file; verify checks both.
        "ALTER TABLE records ADD COLUMN kind TEXT",
        "UPDATE records SET kind = json_extract(CAST(payload AS TEXT), '$.kind') WHERE CASE"
        " WHEN json_valid(CAST(payload AS TEXT)) THEN json_extract(CAST(payload AS TEXT), '$.kind') END"
        f" IN {_KINDS_SQL}",
        "DROP INDEX records_parameter",
        f"CREATE INDEX records_event ON records (parameter, seq) WHERE {EVENTS_CONDITION}",
    ),
}

INSERT_RECORD = (
    "INSERT INTO records (seq, gateway_time, equipment_id, parameter, payload, raw, hash, kind)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
UPSERT_CURSOR = (
    "INSERT INTO cursors (name, seq, updated) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated = excluded.updated"
)


def connect_writer(path: Path, gateway_id: str, synchronous: Synchronous) -> sqlite3.Connection:
    """Open (creating if needed) the journal for its one writer, checked against ``gateway_id``.

    Autocommit mode (``isolation_level=None``) so that transactions are exactly the
    ``BEGIN IMMEDIATE … COMMIT`` the writer issues; ``check_same_thread=False`` because the
    connection is made on the writer's thread but closed after it by the same executor.
    """
    if not path.parent.is_dir():
        raise JournalError(f"{path}: directory {path.parent} does not exist; create it or fix the journal path")
    if not path.exists():
        _create(path, gateway_id)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise JournalError(f"{path}: SQLite refused WAL mode (got {mode!r}); put the journal on a local disk")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        if conn.execute("PRAGMA synchronous").fetchone()[0] != _SYNC_LEVELS[synchronous]:
            raise JournalError(f"{path}: SQLite did not accept synchronous={synchronous}")
        _initialise_or_check(conn, path, gateway_id)
        fsync_directory(path)
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _create(path: Path, gateway_id: str) -> None:
    """Make a new journal beside ``path`` and rename it into place, so that the file at ``path`` is a
    whole journal from the moment it exists: a reader (``verify``, a sink, a qualification rig) that
    opens it while the writer starts never finds an SQLite file without the schema."""
    draft = path.with_name(f"{path.name}.creating")
    draft.unlink(missing_ok=True)  # a creation a crash cut short; the writer lock is ours
    try:
        conn = sqlite3.connect(draft, isolation_level=None)
        try:
            _initialise_or_check(conn, draft, gateway_id)
        finally:
            conn.close()
        os.replace(draft, path)
    except sqlite3.Error as exc:
        draft.unlink(missing_ok=True)
        raise JournalError(f"{path}: cannot create the journal: {exc}") from exc
    fsync_directory(path)


def connect_reader(path: Path) -> tuple[sqlite3.Connection, dict[str, str]]:
    """A read-only connection and the journal's meta, for readers, verify and export.

    WAL lets it read a consistent snapshot while the writer commits. Usable from any one thread.
    """
    if not path.is_file():
        raise JournalError(f"{path}: no journal here")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot open the journal: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        meta = read_meta(conn, path)
        if meta is None:
            raise JournalError(f"{path}: not a cgt-gateway journal (no meta table)")
        check_version(meta, path)
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(f"{path}: cannot read the journal: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn, meta


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str] | None:
    """The meta table as a dict, or None when the file has none (a new file, or not a journal)."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id not in (0, APPLICATION_ID):
        raise JournalError(f"{path}: an SQLite file of another application (application_id {app_id:#x})")
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if has_meta is None:
        return None
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def check_version(meta: Mapping[str, str], path: Path) -> None:
    """Refuse a journal written by a newer gateway: its layout may mean something this one cannot read."""
    raw = meta.get("schema_version", "")
    if not raw.isdigit():
        raise JournalError(f"{path}: journal meta has no valid schema_version ({raw!r}); not a usable journal")
    if int(raw) > JOURNAL_SCHEMA_VERSION:
        raise JournalError(
            f"{path}: journal schema version {raw} is newer than this gateway supports "
            f"({JOURNAL_SCHEMA_VERSION}); upgrade cgt-gateway to read or write it"
        )


def read_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """``(seq, hash)`` of the last record, or ``(0, GENESIS_HASH)`` for an empty journal.

    Retention never removes the last record, so the fallback to the pruned mark is only a safeguard.
    """
    row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    return read_pruned(conn) if row is None else (int(row[0]), str(row[1]))


def read_cursors(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(name): int(seq) for name, seq in conn.execute("SELECT name, seq FROM cursors")}


def read_pruned(conn: sqlite3.Connection) -> tuple[int, str]:
    """``(seq, hash)`` of the last record retention removed, or ``(0, GENESIS_HASH)``: where the chain starts."""
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'pruned_through_%'").fetchall())
    if "pruned_through_seq" not in rows:
        return 0, GENESIS_HASH
    return int(rows["pruned_through_seq"]), str(rows["pruned_through_hash"])


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a table exists (a version 1 file read by a reader has no dead_letters or audit)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (records has ``kind`` from version 4 on)."""
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def _initialise_or_check(conn: sqlite3.Connection, path: Path, gateway_id: str) -> None:
    """Create the schema in a new file, or check an existing one against this gateway."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        meta = read_meta(conn, path)
        if meta is None:
            others = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if others:
                raise JournalError(f"{path}: an SQLite file that is not a cgt-gateway journal; choose another path")
            for statement in (*_DDL, *(sql for version in sorted(_MIGRATIONS) for sql in _MIGRATIONS[version])):
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(JOURNAL_SCHEMA_VERSION)),
                    ("gateway_id", gateway_id),
                    ("created", utc_now().isoformat()),
                ],
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        else:
            check_version(meta, path)
            found = int(meta["schema_version"])
            for version in range(found + 1, JOURNAL_SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
            if found < JOURNAL_SCHEMA_VERSION:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(JOURNAL_SCHEMA_VERSION),))
            owner = meta.get("gateway_id")
            if owner != gateway_id:
                raise JournalError(
                    f"{path}: this journal belongs to gateway {owner!r}, not {gateway_id!r}; "
                    "set gateway_id back or give this gateway its own journal path "
                    "(a journal never changes owner: (gateway_id, seq) is the key downstream)"
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def fsync_directory(path: Path) -> None:
    """Make the directory entries of the journal and its WAL file durable (POSIX; a no-op elsewhere).

    SQLite syncs the files' contents but not, for the WAL, the directory that lists them: a power
    loss right after the first commits of a new file could otherwise lose the file itself.
    """
    if os.name != "posix":
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
