"""The journal's single writer: group commit of concurrent appends, transactions back to back.

Any number of device tasks call :meth:`Journal.append`; each call's records are prepared in the
caller (a copy of each draft's fields), queued as a unit, and the writer thread takes everything
queued (whole calls, up to ``max_batch_rows``) into the next transaction while the current one is on
its way to disk. So the fsync rate sets the transaction rate, not the record rate. The writer runs
on a dedicated single-thread executor and, while appends keep coming, goes from one transaction
straight to the next (it takes the next batch itself and hands each outcome back to the loop), so
a busy event loop never leaves the disk idle between two commits; the loop never touches SQLite.

Backlog policy: at most ``max_pending_rows`` records are queued or in a transaction not yet
settled; an append that does not fit waits, in arrival order, until a transaction settles
(backpressure reaches the device tasks). Nothing is ever dropped. One call larger than either
bound is admitted alone into an empty journal and committed as one transaction of its own,
because a caller's batch (one device read) must become durable atomically.

Commit window: by default an idle writer starts a transaction as soon as an append arrives. With
``commit_window_s`` it first waits that long (or until ``max_batch_rows`` are queued) for more, so
slow, steady traffic (a device polled every few milliseconds, a suite of devices at 1 Hz) shares
one fsync among several reads: less CPU a record, that much more latency. Appends still return
only once durable.

Cancelling an ``append`` that is still waiting for room withdraws it; once queued, its records are
committed whatever happens to the caller. ``close`` commits everything queued and waiting first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import structlog

from gateway.errors import JournalError
from gateway.journal._audit import AuditEntry
from gateway.journal._chain import draft_bodies
from gateway.journal._committed import Committed, JournalStats
from gateway.journal._reader import JournalReader
from gateway.journal._schema import Synchronous
from gateway.journal._store import BatchOutcome, EntryCommitted, Head, Prepared, WriterStore
from gateway.records import RecordDraft

log = structlog.get_logger(__name__)

_State = Literal["new", "starting", "open", "closing", "closed"]


@dataclass(eq=False, slots=True)
class _Pending:
    """One append call on its way to the disk."""

    drafts: list[RecordDraft]
    items: list[Prepared]
    future: asyncio.Future[Committed] = field(repr=False)
    audit: tuple[AuditEntry, ...] = ()


class Journal:
    """The durable, hash-chained, gap-free record of one gateway. One writer per file.

    Use as ``async with Journal.open(path, gateway_id="suite-3") as journal:`` or call
    :meth:`start` and :meth:`close`. Appends from any task of the loop that started it.

    ``synchronous`` is SQLite's: "full" (the default) syncs the WAL on every commit, so an append
    that returned survives a power loss; "extra" is the same in WAL mode; "normal" survives a crash
    of the process (kill -9) but a power loss may take the last transactions back.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        gateway_id: str,
        synchronous: Synchronous = "full",
        max_batch_rows: int = 2000,
        max_pending_rows: int = 10_000,
        min_free_bytes: int = 0,
        commit_window_s: float = 0.0,
    ) -> None:
        if not gateway_id or not isinstance(gateway_id, str):
            raise ValueError("gateway_id must be a non-empty string")
        if synchronous not in get_args(Synchronous):
            raise ValueError(f"synchronous must be one of {get_args(Synchronous)}, not {synchronous!r}")
        if max_batch_rows < 1 or max_pending_rows < 1:
            raise ValueError("max_batch_rows and max_pending_rows must be at least 1")
        if not 0 <= commit_window_s < 60:
            raise ValueError(f"commit_window_s must be at least 0 and under a minute, not {commit_window_s!r}")
        self._path = Path(path)
        self._gateway_id = gateway_id
        self._synchronous = synchronous
        self._max_batch_rows = max_batch_rows
        self._max_pending_rows = max_pending_rows
        self._commit_window_s = commit_window_s
        self._store = WriterStore(self._path, gateway_id, synchronous, min_free_bytes)
        self._state: _State = "new"
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self._queue: deque[_Pending] = deque()
        self._waiting: deque[_Pending] = deque()
        self._queued_rows = 0  # queued or taken into a transaction, until that transaction settles
        #: Batches the writer thread took, in order, until the loop settles them (the thread appends,
        #: the loop pops: both ends of a deque are safe to use from two threads).
        self._in_flight: deque[list[_Pending]] = deque()
        self._wake = asyncio.Event()
        self._advanced = asyncio.Event()  # set and replaced on every commit: wakes wait_for_commit
        self._close_lock = asyncio.Lock()
        self._head: Head = (0, "")
        self._expected: Head | None = None
        self._cursors: dict[str, int] = {}
        self._failing = False
        self._transactions = self._rows = self._largest = self._failed = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> Journal:
        """A journal to use as ``async with``: opened on entry, drained and closed on exit.

        Takes the constructor's keyword arguments (``gateway_id`` and the rest).
        """
        return cls(path, **options)

    async def __aenter__(self) -> Journal:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def gateway_id(self) -> str:
        return self._gateway_id

    @property
    def last_seq(self) -> int:
        """The last committed seq as this writer knows it (0 for an empty journal)."""
        return self._head[0]

    @property
    def head_hash(self) -> str:
        """The hash of the last committed record (64 zeros for an empty journal)."""
        return self._head[1]

    @property
    def stats(self) -> JournalStats:
        return JournalStats(
            transactions=self._transactions,
            rows=self._rows,
            largest_batch=self._largest,
            failed_transactions=self._failed,
            pending_rows=sum(len(p.items) for p in list(self._queue)),  # a copy: the writer thread pops
            waiting_appends=len(self._waiting),
            last_seq=self._head[0],
        )

    async def start(self) -> None:
        """Open or create the file (checked against ``gateway_id``), read its head, start the writer."""
        if self._state != "new":
            raise JournalError(f"{self._path}: journal already started")
        self._state = "starting"  # appends and a second start are refused until open
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        try:
            head, cursors = await asyncio.get_running_loop().run_in_executor(executor, self._store.open)
        except BaseException:
            executor.submit(self._store.close)  # after open finishes, even when we were cancelled
            executor.shutdown(wait=True)
            self._state = "closed"
            raise
        self._executor = executor
        self._head = self._expected = head
        self._cursors = cursors
        self._writer = asyncio.create_task(self._run(), name=f"journal writer {self._path.name}")
        self._state = "open"
        log.info(
            "journal opened", path=str(self._path), gateway_id=self._gateway_id, last_seq=head[0],
            synchronous=self._synchronous,
        )

    async def close(self) -> None:
        """Commit everything queued, stop the writer, close the file. Idempotent.

        If the caller is cancelled while the queue drains, the writer keeps draining: call close
        again to finish.
        """
        async with self._close_lock:
            if self._state == "closed":
                return
            if self._state == "new":
                self._state = "closed"
                return
            if self._state == "starting":
                raise JournalError(f"{self._path}: close called while the journal is still starting")
            self._state = "closing"
            assert self._writer is not None and self._executor is not None
            self._wake.set()
            self._advanced.set()  # waiters see the journal closing and raise
            await asyncio.wait([self._writer])  # does not cancel the writer if we are cancelled
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.close)
            self._executor.shutdown(wait=True)  # the thread is idle: this only joins it
            self._state = "closed"
            log.info("journal closed", path=str(self._path), last_seq=self._head[0], rows=self._rows,
                     transactions=self._transactions)
            if not self._writer.cancelled() and self._writer.exception() is not None:
                raise JournalError(f"{self._path}: the journal writer failed") from self._writer.exception()

    async def append(
        self, items: Sequence[tuple[RecordDraft, bytes | None]], *, audit: Sequence[AuditEntry] = ()
    ) -> Committed:
        """Commit drafts with their raw wire bytes; return once the transaction holding them is durable.

        All items of one call go into one transaction, numbered consecutively, with ``audit``
        entries describing them (a binding, an acknowledgement) in the same transaction. Raises
        ValueError (before anything is queued) for a draft the journal cannot hold, JournalError
        when the journal is not open or the transaction failed (then none of the items took a seq).
        """
        self._check_open()
        pairs = [(draft, _as_bytes(raw)) for draft, raw in items]
        prepared: list[Prepared] = draft_bodies(pairs)
        drafts = [draft for draft, _ in pairs]
        if not drafts:
            return Committed(self._gateway_id, (), self._head[0] + 1, self._head[1], ())
        pending = _Pending(drafts, prepared, asyncio.get_running_loop().create_future(), tuple(audit))
        if self._waiting or not self._has_room(len(drafts)):
            self._waiting.append(pending)
        else:
            self._enqueue(pending)
        try:
            return await pending.future
        except asyncio.CancelledError:
            if pending in self._waiting:
                self._waiting.remove(pending)
            raise

    def get_cursor(self, name: str) -> int:
        """The last seq the sink ``name`` has durably taken (0 for a new sink). No I/O."""
        return self._cursors.get(name, 0)

    async def set_cursor(self, name: str, seq: int) -> None:
        """Durably record that sink ``name`` has taken every record up to ``seq``."""
        await self.settle(name, seq)

    async def settle(self, name: str, seq: int, rejected: Sequence[tuple[int, str]] = ()) -> None:
        """Move sink ``name``'s cursor to ``seq`` and dead-letter ``rejected`` ``(seq, reason)`` pairs,
        with an audit entry for each, in one durable transaction.
        """
        self._check_open()
        if not name or not isinstance(name, str):
            raise ValueError("a cursor needs a non-empty name")
        if type(seq) is not int or seq < 0:
            raise ValueError(f"cursor {name!r}: seq must be an int >= 0, not {seq!r}")
        if seq > self._head[0]:
            raise ValueError(f"cursor {name!r}: seq {seq} is beyond the last committed record ({self._head[0]})")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._store.settle, name, seq, list(rejected))
        self._cursors[name] = seq

    async def audit(self, *entries: AuditEntry) -> None:
        """Append entries to the journal's hash-chained audit trail (durable on return)."""
        self._check_open()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._store.audit, list(entries))

    async def resolve(self, seq: int, kind: str, parameters: Sequence[str], entry: AuditEntry) -> None:
        """Close the flagged record ``seq`` (``kind`` "alarm" for an alarm record, else a record of one of
        ``parameters``) with the person and reason in ``entry``, audited in the same transaction."""
        self._check_open()
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._store.resolve, seq, kind, list(parameters), entry
        )

    async def prune(self, through_seq: int, older_than: datetime, *, max_rows: int = 100_000) -> int:
        """Remove the oldest records that every sink has taken (``<= through_seq``) and whose
        ``gateway_time`` is before ``older_than``; at most ``max_rows`` per call. Returns how many.

        Never removes the last record, nor any record at or after a dead letter still kept.
        """
        self._check_open()
        before = older_than.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._store.prune, through_seq, before, max_rows
        )

    async def flush(self) -> int:
        """Wait until everything appended so far is committed (or failed); return the last committed seq.

        An append whose caller was cancelled is still committed, so after the devices stop this is
        how the runtime learns the true last record before it lets the sinks drain.
        """
        while self._queued_rows or self._waiting:
            self._check_open()
            await self._advanced.wait()
        return self._head[0]

    async def wait_for_commit(self, after_seq: int) -> int:
        """Wait until a record beyond ``after_seq`` is committed; return the last committed seq."""
        while self._head[0] <= after_seq:
            self._check_open()
            await self._advanced.wait()
        return self._head[0]

    def storage(self) -> tuple[int, int]:
        """``(bytes the journal files take, bytes free on their disk)``, for quota alarms and metrics."""
        used = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                used += os.stat(f"{self._path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return used, shutil.disk_usage(self._path.parent).free

    def reader(self) -> JournalReader:
        """A new read-only reader of this journal's file (close it when done)."""
        return JournalReader(self._path)

    def _check_open(self) -> None:
        if self._state != "open":
            raise JournalError(f"{self._path}: the journal is not open (state: {self._state})")
        assert self._writer is not None
        if self._writer.done():
            cause = None if self._writer.cancelled() else self._writer.exception()
            raise JournalError(f"{self._path}: the journal writer has stopped") from cause

    def _has_room(self, rows: int) -> bool:
        return self._queued_rows == 0 or self._queued_rows + rows <= self._max_pending_rows

    def _enqueue(self, pending: _Pending) -> None:
        self._queue.append(pending)
        self._queued_rows += len(pending.items)
        self._wake.set()

    def _take_batch(self) -> list[_Pending]:
        """Whole append calls from the front of the queue, up to max_batch_rows (at least one).

        Runs on the writer thread; the loop only appends at the other end of the deque.
        """
        batch = [self._queue.popleft()]
        rows = len(batch[0].items)
        while self._queue and rows + len(self._queue[0].items) <= self._max_batch_rows:
            pending = self._queue.popleft()
            batch.append(pending)
            rows += len(pending.items)
        return batch

    def _commit_while_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: commit batches back to back until the queue is empty.

        Each outcome goes to the loop (``_settled``) in order; the thread keeps the head it expects,
        because it is the only one that writes.
        """
        while self._queue:
            batch = self._take_batch()
            self._in_flight.append(batch)
            outcome = self._store.commit(
                [p.items for p in batch], self._expected, [p.audit for p in batch]
            )
            self._expected = outcome.head
            loop.call_soon_threadsafe(self._settled, outcome)

    async def _gather(self, deadline: float) -> None:
        """Let more appends join the next transaction until ``deadline``, a full batch or close."""
        loop = asyncio.get_running_loop()
        while self._state == "open" and self._queued_rows < self._max_batch_rows:
            delay = deadline - loop.time()
            if delay <= 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._queue:
                    if self._state == "closing" and not self._waiting:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._commit_window_s:
                    await self._gather(loop.time() + self._commit_window_s)
                await loop.run_in_executor(self._executor, self._commit_while_queued, loop)
            if self._waiting:  # cannot happen: a waiting append is admitted as soon as the queue empties
                raise RuntimeError(f"{len(self._waiting)} appends left waiting by the journal writer")
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("journal writer crashed", path=str(self._path))
            taken = [p for batch in list(self._in_flight) for p in batch]  # copies: the thread may still run
            for pending in (*taken, *list(self._queue), *self._waiting):
                if not pending.future.done():
                    pending.future.set_exception(
                        JournalError(f"{self._path}: the journal writer stopped; these records may not be committed")
                    )
            self._in_flight.clear()
            self._queue.clear()
            self._waiting.clear()
            self._queued_rows = 0
            raise

    def _settled(self, outcome: BatchOutcome) -> None:
        """On the loop, in commit order: answer the appenders of the oldest batch taken, make room."""
        if not self._in_flight:  # the writer crashed and failed them already
            return
        batch = self._in_flight.popleft()
        self._settle(batch, outcome)
        self._queued_rows -= sum(len(p.items) for p in batch)
        while self._waiting and self._has_room(len(self._waiting[0].items)):
            self._enqueue(self._waiting.popleft())
        self._advanced.set()  # wakes wait_for_commit and flush, whatever the outcome
        self._advanced = asyncio.Event()

    def _settle(self, batch: list[_Pending], outcome: BatchOutcome) -> None:
        if outcome.head is not None:
            self._head = outcome.head
        if outcome.error is not None:
            self._failed += 1
            if not self._failing:
                log.error("journal write failed", path=str(self._path), error=str(outcome.error))
                self._failing = True
            for pending in batch:
                if not pending.future.done():
                    error = JournalError(f"{outcome.error}; none of these {len(pending.items)} records was committed")
                    error.__cause__ = outcome.error
                    pending.future.set_exception(error)
            return
        if self._failing:
            log.info("journal writes recovered", path=str(self._path), last_seq=self._head[0])
            self._failing = False
        if outcome.rows:
            self._transactions += 1
            self._rows += outcome.rows
            self._largest = max(self._largest, outcome.rows)
        for pending, result in zip(batch, outcome.results, strict=True):
            if pending.future.done():  # the caller was cancelled; its records are committed anyway
                continue
            if isinstance(result, EntryCommitted):
                pending.future.set_result(
                    Committed(self._gateway_id, pending.drafts, result.first_seq, result.prev_hash, result.hashes)
                )
            else:
                pending.future.set_exception(result)


def _as_bytes(raw: object) -> bytes | None:
    if raw is None or type(raw) is bytes:
        return raw  # type: ignore[return-value]
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw)
    raise TypeError(f"raw wire bytes must be bytes or None, not {type(raw).__name__}")
