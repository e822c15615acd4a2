"""One writer per journal file: an exclusive advisory lock on ``<journal>.lock``, held while the writer is open.

Two writers on one file would each number records from the head they last saw; the store's head check
catches that at the next commit, but only after the fact. The lock refuses the second writer before it
writes anything, whether it is another gateway process, a journal command (restore, baseline) or a second
:class:`~gateway.journal.Journal` object in the same process (``flock`` locks belong to an open file, so
two opens of the lock file conflict even in one process). The holder writes its pid into the lock file so
the refusal can say who holds it. The lock file stays in place after close: removing it would let two
processes lock two different files of the same name. POSIX only; elsewhere it is a no-op.

Readers (sinks, export, verify, backup) never take it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from gateway.errors import JournalError

try:
    import fcntl
except ImportError:  # not POSIX: no advisory lock; the store's head check remains
    fcntl = None  # type: ignore[assignment]


def lock_path(journal: Path) -> Path:
    """``journal.sqlite`` → ``journal.sqlite.lock`` beside it."""
    return journal.with_name(journal.name + ".lock")


class JournalLock:
    """The held lock of one journal; :meth:`release` (idempotent) lets the next writer in."""

    def __init__(self, journal: Path, fd: int | None) -> None:
        self.journal = journal
        self._fd = fd

    @classmethod
    def acquire(cls, journal: Path) -> JournalLock:
        """Take the lock without waiting; JournalError naming the holder's pid when it is taken."""
        if fcntl is None:
            return cls(journal, None)
        path = lock_path(journal)
        if not journal.parent.is_dir():
            raise JournalError(
                f"{journal}: directory {journal.parent} does not exist; create it or fix the journal path"
            )
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"{journal}: cannot open the lock file {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = "unknown" if holder is None else f"{holder}{' (this process)' if holder == os.getpid() else ''}"
            raise JournalError(
                f"{journal}: the journal is in use by another gateway (pid {who} from the lock file {path}, "
                "which it holds locked) or a journal command: stop it first"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise JournalError(f"{journal}: cannot lock {path}: {exc.strerror}") from exc
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds without the pid; a refusal then says "pid unknown"
        return cls(journal, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for the next reader of the file
        os.close(fd)  # closing the only descriptor of the open file releases the flock


@contextlib.contextmanager
def journal_locked(journal: Path) -> Iterator[JournalLock]:
    """Hold the journal's writer lock for a block (restore): no gateway can start meanwhile."""
    lock = JournalLock.acquire(journal)
    try:
        yield lock
    finally:
        lock.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
