"""Backing up a journal while its gateway runs, and putting a backup back in its place.

:func:`backup` copies one consistent snapshot with SQLite's online backup API from a read-only
connection (so it never blocks the writer, which may keep appending), checks the copy against the
source's head *as of that snapshot* (last seq and hash, audit trail head), verifies the copy's chain,
and only then makes it durable under its final name. The copy is a single self-contained file
(rollback-journal mode, no ``-wal`` beside it) that :func:`verify` and a reader open like any journal.

:func:`restore` holds the journal's writer lock throughout (so it refuses while a gateway runs and no
gateway can start half-way), refuses a backup that does not verify or belongs to another gateway,
never deletes the current journal (it becomes ``<journal>.replaced-<UTC time>``, with its ``-wal``),
and writes the ``journal.restored`` audit entry into the restored journal before it goes in place.
Blocking: call from a command or a thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.errors import JournalError
from gateway.journal._audit import AuditEntry, append_entries
from gateway.journal._chain import GENESIS_HASH
from gateway.journal._lock import journal_locked
from gateway.journal._schema import connect_reader, connect_writer, fsync_directory, has_table, read_head
from gateway.journal._verify import verify

#: The files SQLite may keep beside a journal; they move with it.
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class Head:
    """Where a journal ends: its last record and its audit trail's last entry."""

    last_seq: int
    head_hash: str
    audit_entries: int
    audit_head: str

    def describe(self) -> str:
        return (f"seq {self.last_seq} hash {self.head_hash[:16]}, "
                f"audit entry {self.audit_entries} hash {self.audit_head[:16]}")


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A backup made and checked: the source's head at the moment of the copy, and the copy's."""

    source: str
    copy: str
    gateway_id: str
    source_head: Head
    copy_head: Head
    verified: bool
    #: verify's one line about the copy (OK or where it is broken).
    verify_summary: str
    bytes: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.verified and self.source_head == self.copy_head

    def summary(self) -> str:
        state = "OK" if self.ok else "BROKEN"
        return (f"backup {self.copy}: {state}, gateway {self.gateway_id!r}, copy {self.copy_head.describe()}; "
                f"source {self.source} at the copy: {self.source_head.describe()}"
                + ("" if self.verified else f"; {self.verify_summary}"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """A restore done: what was in place before (None: no journal), what is now, where the old one went."""

    journal: str
    backup: str
    gateway_id: str
    replaced_by: str | None
    before: Head | None
    after: Head
    actor: str

    def summary(self) -> str:
        old = "no journal" if self.before is None else self.before.describe()
        kept = "" if self.replaced_by is None else f"; the previous journal is kept as {self.replaced_by}"
        return (f"restored {self.journal} from {self.backup}: was {old}, now {self.after.describe()} "
                f"(audited as journal.restored by {self.actor}){kept}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backup(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> BackupReport:
    """Copy the journal ``source`` to the new file ``destination`` online and check the copy.

    Raises JournalError when the copy cannot be made or is not the source's snapshot (then nothing
    is left at ``destination``). A source whose chain is broken is still copied faithfully; the
    report then says ``ok=False`` with verify's reason.
    """
    src_path, dest = Path(source), Path(destination)
    if dest.exists():
        raise JournalError(f"{dest}: already exists; a backup never overwrites a file, choose another name")
    if not dest.parent.is_dir():
        raise JournalError(f"{dest}: directory {dest.parent} does not exist")
    partial = dest.with_name(dest.name + ".partial")
    _remove_with_side_files(partial)
    started = time.monotonic()
    conn, meta = connect_reader(src_path)
    try:
        try:
            conn.execute("BEGIN")  # one snapshot: the head read here is the head copied
            at_copy = _read_head(conn)
            with contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as out:
                conn.backup(out)
                conn.execute("COMMIT")
                out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal to carry along
        except sqlite3.Error as exc:
            raise JournalError(f"{src_path}: cannot back up the journal to {dest}: {exc}") from exc
    except BaseException:
        _remove_with_side_files(partial)
        raise
    finally:
        conn.close()
    try:
        copied = _head_of(partial)
        if copied != at_copy:
            raise JournalError(
                f"{dest}: the copy ends at {copied.describe()} but the source was at {at_copy.describe()}; "
                "nothing was kept, try again"
            )
        report = verify(partial)
        _fsync_file(partial)
        if dest.exists():
            raise JournalError(f"{dest}: appeared while the backup was made; a backup never overwrites a file")
        partial.rename(dest)
        fsync_directory(dest)
    except BaseException:
        _remove_with_side_files(partial)
        raise
    return BackupReport(
        source=str(src_path), copy=str(dest), gateway_id=meta.get("gateway_id", ""), source_head=at_copy,
        copy_head=copied, verified=report.ok, verify_summary=report.summary().replace(str(partial), str(dest)),
        bytes=dest.stat().st_size, seconds=round(time.monotonic() - started, 3),
    )


def restore(
    journal: str | os.PathLike[str],
    backup_file: str | os.PathLike[str],
    *,
    gateway_id: str | None = None,
    actor: str,
    reason: str,
    force: bool = False,
) -> RestoreReport:
    """Put the backup ``backup_file`` in place of ``journal``, keeping the current journal beside it.

    ``gateway_id`` is the gateway the journal must belong to (the site's); without it, the current
    journal's. Refuses (JournalError, nothing changed) while the journal is in use, when the backup
    does not verify or is another gateway's, and, unless ``force``, when the current journal verifies
    and holds records the backup lacks (restoring would number new records with seqs already sent).
    """
    path, source = Path(journal), Path(backup_file)
    if not actor.strip() or not reason.strip():
        raise JournalError("a restore needs who does it and why (both go into the audit trail)")
    with journal_locked(path):
        checked = verify(source)
        if not checked.ok:
            raise JournalError(f"the backup does not verify, nothing was changed: {checked.summary()}")
        to = _head_of(source)
        before, current_ok = _current(path)
        expected = gateway_id or (before[1] if before is not None else None)
        if expected is None:
            raise JournalError(f"{path}: no journal here to take the gateway id from; give the site file (-c)")
        if checked.gateway_id != expected:
            raise JournalError(
                f"{source}: a backup of gateway {checked.gateway_id!r}, not of {expected!r}; "
                "a journal never changes owner: restore this gateway's own backup"
            )
        if before is not None and current_ok and before[0].last_seq > to.last_seq and not force:
            raise JournalError(
                f"{path}: the current journal verifies and goes on to seq {before[0].last_seq}, beyond the backup's "
                f"seq {to.last_seq}: restoring would give seqs {to.last_seq + 1}.. to new records although sinks "
                "may have sent the old ones; nothing was changed (use --force only when that is understood)"
            )
        staged = path.with_name(path.name + ".restoring")
        _remove_with_side_files(staged)
        try:
            _stage(source, staged, expected, AuditEntry(
                "journal.restored", str(path), reason.strip(), {
                    "backup": str(source.resolve()),
                    "from": None if before is None else asdict(before[0]),
                    "from_verified": current_ok,
                    "to": asdict(to),
                    "forced": force,
                }, actor=actor.strip(),
            ))
            staged_report = verify(staged)
            if not staged_report.ok or (staged_report.last_seq, staged_report.head_hash) != (to.last_seq, to.head_hash):
                raise JournalError(f"the restored copy does not match the backup, nothing was changed: "
                                   f"{staged_report.summary()}")
        except BaseException:
            _remove_with_side_files(staged)
            raise
        replaced = None
        if path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            replaced = path.with_name(f"{path.name}.replaced-{stamp}")
            _move_with_side_files(path, replaced)
        staged.rename(path)
        fsync_directory(path)
        after = _head_of(path)
    return RestoreReport(
        journal=str(path), backup=str(source), gateway_id=expected,
        replaced_by=None if replaced is None else str(replaced), before=None if before is None else before[0],
        after=after, actor=actor.strip(),
    )


def _stage(source: Path, staged: Path, gateway_id: str, entry: AuditEntry) -> None:
    """Copy the backup to ``staged``, audit the restore in it, and leave it one durable file."""
    conn, _ = connect_reader(source)
    try:
        with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as out:
            conn.backup(out)
    except sqlite3.Error as exc:
        raise JournalError(f"{source}: cannot copy the backup: {exc}") from exc
    finally:
        conn.close()
    writer = connect_writer(staged, gateway_id, "full")  # checks the owner, brings an older schema up to date
    try:
        writer.execute("BEGIN IMMEDIATE")
        append_entries(writer, [entry])
        writer.execute("COMMIT")
        writer.execute("PRAGMA journal_mode = DELETE")  # checkpoints: one file; the gateway turns WAL back on
    except sqlite3.Error as exc:
        raise JournalError(f"{staged}: cannot write the restore's audit entry: {exc}") from exc
    finally:
        writer.close()
    _fsync_file(staged)


def _current(path: Path) -> tuple[tuple[Head, str] | None, bool]:
    """``((head, gateway_id), verifies)`` of the journal in place; ``(None, False)`` when there is none or it
    cannot be read as a journal at all (it is kept all the same)."""
    if not path.exists():
        return None, False
    try:
        conn, meta = connect_reader(path)
    except JournalError:
        return None, False
    try:
        head = _read_head(conn)
    except sqlite3.Error:
        return None, False
    finally:
        conn.close()
    try:
        ok = verify(path).ok
    except JournalError:
        ok = False
    return (head, meta.get("gateway_id", "")), ok


def _head_of(path: Path) -> Head:
    conn, _ = connect_reader(path)
    try:
        return _read_head(conn)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot read the journal's head: {exc}") from exc
    finally:
        conn.close()


def _read_head(conn: sqlite3.Connection) -> Head:
    last_seq, head_hash = read_head(conn)
    row = None
    if has_table(conn, "audit"):
        row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    entries, audit_head = (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
    return Head(last_seq, head_hash, entries, audit_head)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_with_side_files(path: Path, to: Path) -> None:
    """Rename the journal and whatever SQLite keeps beside it, so the pair stays a readable journal."""
    for suffix in _SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.rename(f"{to}{suffix}")
    if path.exists():
        path.rename(to)


def _remove_with_side_files(path: Path) -> None:
    """Remove a partial file this module made (never a journal or a backup)."""
    for suffix in ("", *_SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
