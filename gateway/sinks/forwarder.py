"""Run one sink: read committed records through its durable cursor, deliver them in order, settle.

Store-and-forward in one loop. The device side never waits for a sink: the forwarder reads the
journal file with its own reader (a thread hop per page) and is woken by commits. Per batch:

1. wait for a record beyond the cursor, then up to ``batch.max_age_s`` for the batch to fill;
2. read up to ``batch.max_records`` records after the cursor, exactly as committed;
3. ``sink.write``; per record: accepted → done, rejected → dead letter (kept, with an audit entry),
   retry → stop there; the cursor moves past the settled prefix, dead letters with it, in one
   durable transaction, while the next batch is already on the wire (the moves stay in order, one
   at a time); the rest is resent after a backoff, in order;
4. a :class:`SinkError` (or a sink's bug) closes the sink and reconnects after a capped backoff.

So a record is forwarded at least once and never skipped; the receiver makes it exactly once by
``(gateway_id, seq)``. A crash between delivery and the cursor move resends that batch and the one
after it, no more.

A sink whose class sets ``takes_stored = True`` gets its records as they were stored
(:class:`~gateway.sinks.wire.StoredRecords`: each record's JSON without decoding it); every other
sink gets wire dicts decoded in the reader thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import structlog

from gateway.backoff import capped_backoff
from gateway.journal import AuditEntry, Journal, JournalReader
from gateway.records import utc_now
from gateway.sinks.base import Outcome, Sink, SinkBatch, SinkConfig, SinkError, Verdict, WireRecord
from gateway.sinks.wire import StoredRecord, StoredRecords

log = structlog.get_logger(__name__)

_ACCEPTED = Outcome.accepted()

#: Longest wait between tries while a shutdown drain runs.
_DRAIN_RETRY_S = 0.2

#: Where a stored payload holds gateway_time (a top-level key: see gateway.sinks.wire.span).
_GATEWAY_TIME = b'"gateway_time":"'

#: Cursor names of sinks in the journal's ``cursors`` table: ``sink:<name>``.
CURSOR_PREFIX = "sink:"


def cursor_name(sink_name: str) -> str:
    return f"{CURSOR_PREFIX}{sink_name}"


@dataclass
class SinkStatus:
    """What metrics and the operator want to know about one sink, at a glance."""

    name: str
    type: str
    state: str = "starting"  # starting | connecting | forwarding | idle | backing_off | stopped
    cursor: int = 0
    last_seq: int = 0
    #: gateway_time of the oldest record not yet settled, when known.
    oldest_pending: datetime | None = None
    delivered: int = 0
    rejected: int = 0
    #: Records of this sink in the journal's dead-letter list (all runs, not only this one).
    dead_letters: int = 0
    failures: int = 0
    last_error: str | None = None
    since: datetime = field(default_factory=utc_now)

    @property
    def backlog(self) -> int:
        """Committed records this sink has not settled yet."""
        return max(0, self.last_seq - self.cursor)

    @property
    def backlog_age_s(self) -> float:
        """How long the oldest unsettled record has waited (0 when none)."""
        if not self.backlog or self.oldest_pending is None:
            return 0.0
        return max(0.0, (utc_now() - self.oldest_pending).total_seconds())

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "type": self.type, "state": self.state, "cursor": self.cursor,
            "last_seq": self.last_seq, "backlog": self.backlog, "backlog_age_s": round(self.backlog_age_s, 3),
            "delivered": self.delivered, "rejected": self.rejected, "dead_letters": self.dead_letters,
            "failures": self.failures,
            "last_error": self.last_error, "since": self.since.isoformat(),
        }


class Forwarder:
    """Delivers one journal to one sink until cancelled. Never raises for the sink's failures."""

    def __init__(self, sink: Sink, config: SinkConfig, journal: Journal, *, rng: random.Random | None = None) -> None:
        self.sink = sink
        self.config = config
        self.journal = journal
        self.cursor_name = cursor_name(config.name)
        self.status = SinkStatus(config.name, config.type)
        retry = config.retry
        self._delay = capped_backoff(retry.initial_s, retry.max_s, retry.jitter, rng or random.Random())
        self._log = log.bind(sink=config.name, sink_type=config.type)
        self._connected = False
        self._failing = False
        self._settled = asyncio.Event()
        self._flush = asyncio.Event()
        #: The sink takes records as stored (their JSON as bytes) instead of decoded dicts.
        self._stored = getattr(sink, "takes_stored", False) is True

    async def run(self) -> None:
        """Forward until cancelled; closes the sink on the way out.

        While a batch is on the wire the next page of a backlog is read from the journal and the
        previous batch's cursor move is committed, so a catch-up after an outage overlaps the
        journal's work with the receiver's.
        """
        reader = await asyncio.to_thread(JournalReader, self.journal.path)
        self.status.dead_letters = len(await asyncio.to_thread(reader.dead_letters, self.cursor_name))
        cursor = self.journal.get_cursor(self.cursor_name)
        self.status.cursor = cursor
        pending: list[StoredRecord] = []
        prefetched: asyncio.Future[list[StoredRecord]] | None = None
        settling: asyncio.Future[None] | None = None  # the durable cursor move of the last batch
        attempt = failures = 0
        try:
            while True:
                self.status.last_seq = self.journal.last_seq
                if not pending:
                    if prefetched is not None:
                        pending, prefetched = await prefetched, None
                    if not pending:
                        if settling is not None:  # nothing to send: the cursor move finishes first
                            move, settling = settling, None
                            await move
                        self._mark("idle")
                        await self._gather(cursor)
                        pending = await asyncio.to_thread(self._read, reader, cursor, self.journal.last_seq)
                        cursor = await self._check_start(cursor, pending)
                    attempt = 0
                    if pending:
                        self.status.oldest_pending = pending[0].gateway_time
                    continue
                if not self._connected and not await self._connect():
                    failures += 1
                    await self._back_off(failures)
                    continue
                attempt += 1
                if prefetched is None and self.journal.last_seq > pending[-1].seq:
                    # what follows the pending records stays next whatever the receiver answers
                    prefetched = asyncio.ensure_future(
                        asyncio.to_thread(self._read, reader, pending[-1].seq, self.journal.last_seq)
                    )
                outcomes = await self._write(pending, attempt)
                if outcomes is None:  # the whole batch failed
                    failures += 1
                    await self._back_off(failures)
                    continue
                if settling is not None:  # cursor moves stay in order, one at a time
                    move, settling = settling, None
                    await move
                cursor, pending, settling = self._settle(cursor, pending, outcomes)
                if pending:
                    failures += 1
                    await self._back_off(failures)
                else:
                    failures = 0
        finally:
            self._mark("stopped")
            await asyncio.shield(self._close())
            if prefetched is not None:  # the reader is not shared between threads: let the read finish
                await asyncio.shield(asyncio.wait([prefetched]))
            if settling is not None:  # a cursor move under way completes (its thread would anyway)
                await asyncio.shield(asyncio.wait([settling]))
                if not settling.cancelled() and settling.exception() is not None:
                    self._log.error("cursor move failed", error=repr(settling.exception()))
            await asyncio.to_thread(reader.close)

    def snapshot(self) -> SinkStatus:
        """A copy of the status with the journal's current head, for metrics and the operator."""
        self.status.last_seq = self.journal.last_seq
        return dataclasses.replace(self.status)

    async def drained(self) -> None:
        """Send what is committed without waiting for batches to fill; return once it is all settled."""
        self._flush.set()
        target = self.journal.last_seq
        while self.status.cursor < target:
            self._settled.clear()
            await self._settled.wait()

    # -- the steps ---------------------------------------------------------------------------

    async def _gather(self, cursor: int) -> None:
        """Wait for a record beyond ``cursor``, then a little longer for the batch to fill."""
        await self.journal.wait_for_commit(cursor)
        max_records, max_age = self.config.batch.max_records, self.config.batch.max_age_s
        if max_age <= 0 or self.journal.last_seq - cursor >= max_records:
            return
        try:
            async with asyncio.timeout(max_age):
                while self.journal.last_seq - cursor < max_records and not self._flush.is_set():
                    await self._more_or_flush()
        except TimeoutError:
            pass

    async def _more_or_flush(self) -> None:
        """Wait for the next commit, or for a shutdown asking to send what there is now."""
        waits = {
            asyncio.ensure_future(self.journal.wait_for_commit(self.journal.last_seq)),
            asyncio.ensure_future(self._flush.wait()),
        }
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a closed journal raises here
        finally:
            for task in waits:
                task.cancel()
            await asyncio.wait(waits)

    def _read(self, reader: JournalReader, cursor: int, head: int) -> list[StoredRecord]:
        """Up to ``max_records`` records after the cursor (blocking: runs in a thread).

        Bounded by ``head``, the last seq the writer has reported: the file can already hold a
        transaction the writer has not yet taken back from its thread, and a cursor may never
        move past what the writer knows is committed. Decoded into wire dicts here, off the event
        loop, unless the sink takes them as stored.
        """
        out = []
        for seq, payload, _, hash_ in reader.rows(cursor, self.config.batch.max_records, raw=False):
            if seq > head:
                break
            if self._stored:
                start = payload.find(_GATEWAY_TIME) + len(_GATEWAY_TIME)  # an RFC 3339 time: no escapes
                end = payload.find(b'"', start)
                if start < len(_GATEWAY_TIME) or end < 0:
                    moment = orjson.loads(payload)["gateway_time"]
                else:
                    moment = payload[start:end].decode()
                out.append(StoredRecord(seq, payload, hash_, datetime.fromisoformat(moment)))
            else:
                record = orjson.loads(payload)
                record["hash"] = hash_
                out.append(StoredRecord(seq, payload, hash_, datetime.fromisoformat(record["gateway_time"]), record))
        return out

    async def _check_start(self, cursor: int, pending: list[StoredRecord]) -> int:
        """A sink added after retention pruned the oldest records starts where the journal starts, and says so."""
        if not pending or pending[0].seq == cursor + 1:
            return cursor
        first = pending[0].seq
        reason = f"records {cursor + 1}..{first - 1} were pruned before this sink took them"
        self._log.warning("sink starts after pruned records", first_seq=first, reason=reason)
        await self.journal.audit(AuditEntry("delivery.skipped_pruned", f"sink:{self.config.name}", reason,
                                            {"first_missing": cursor + 1, "last_missing": first - 1}))
        return first - 1

    async def _connect(self) -> bool:
        self._mark("connecting")
        try:
            await self.sink.connect()
        except SinkError as exc:
            self._failed(f"cannot connect: {exc}")
            await self._close()
            return False
        except Exception as exc:  # a sink's bug must not stop the others, nor the devices
            self._log.exception("sink connect crashed")
            self._failed(f"connect crashed: {exc!r}")
            await self._close()
            return False
        self._connected = True
        return True

    async def _write(self, pending: list[StoredRecord], attempt: int) -> Sequence[Outcome] | None:
        """One send of the pending records: one outcome each, or None when nothing of it was delivered."""
        self._mark("forwarding")
        late_before = utc_now() - timedelta(seconds=self.config.late_after_s)  # late: older than late_after_s
        late = [s.gateway_time < late_before for s in pending]
        records: Sequence[WireRecord]
        if self._stored:
            records = StoredRecords(pending, late)
        else:
            records = [s.record for s in pending]  # type: ignore[misc]  # decoded by _read for this sink
            for record, is_late in zip(records, late, strict=True):
                record["delivery"] = {"late": is_late}
        batch = SinkBatch(self.journal.gateway_id, records, attempt, tuple([s.seq for s in pending]))
        try:
            outcomes = await self.sink.write(batch)
            if outcomes is not None and len(outcomes) != len(pending):
                raise SinkError(f"the sink answered {len(outcomes)} outcomes for {len(pending)} records (a sink bug)")
        except SinkError as exc:
            self._failed(str(exc))
        except Exception as exc:  # a sink's bug must not stop the others, nor the devices
            self._log.exception("sink write crashed")
            self._failed(f"write crashed: {exc!r}")
        else:
            return [_ACCEPTED] * len(pending) if outcomes is None else outcomes
        await self._close()
        return None

    def _settle(
        self, cursor: int, pending: list[StoredRecord], outcomes: Sequence[Outcome]
    ) -> tuple[int, list[StoredRecord], asyncio.Future[None] | None]:
        """Start moving the cursor past the settled prefix (dead-lettering rejects): the new cursor,
        what is left to resend, and the durable move under way (None when nothing was settled)."""
        done = len(pending)
        rejected: list[tuple[int, str]] = []
        retry_reason = None
        everything = outcomes.count(_ACCEPTED) == done  # the usual answer, counted in C
        for i, outcome in enumerate(() if everything else outcomes):
            if outcome.verdict is Verdict.RETRY:
                done, retry_reason = i, outcome.reason or "the receiver asked for a resend"
                break
            if outcome.verdict is Verdict.REJECTED:
                rejected.append((pending[i].seq, outcome.reason or "rejected by the receiver"))
        move = None
        if done:
            cursor = pending[done - 1].seq
            move = asyncio.ensure_future(self._move(cursor, done - len(rejected), rejected))
        if retry_reason is not None:
            self._failed(f"seq {pending[done].seq}: {retry_reason}")
        elif self._failing:
            self._log.info("sink delivering again", cursor=cursor)
            self._failing = False
            self.status.last_error = None
        left = pending[done:]
        self.status.oldest_pending = left[0].gateway_time if left else None
        return cursor, left, move

    async def _move(self, cursor: int, delivered: int, rejected: list[tuple[int, str]]) -> None:
        """The durable cursor move with its dead letters; the status says so once it is durable."""
        await self.journal.settle(self.cursor_name, cursor, rejected)
        self.status.cursor = cursor
        self.status.delivered += delivered
        self.status.rejected += len(rejected)
        self.status.dead_letters += len(rejected)
        for seq, reason in rejected:
            self._log.error("record rejected by the receiver: kept in the dead-letter list", seq=seq, reason=reason)
        self._settled.set()

    # -- bookkeeping -------------------------------------------------------------------------

    def _failed(self, error: str) -> None:
        """Log a failure once per outage (not once per retry), keep the latest for the status."""
        self.status.failures += 1
        self.status.last_error = error
        if not self._failing:
            self._log.error("sink delivery failing; records stay in the journal and will be resent", error=error)
            self._failing = True

    async def _back_off(self, failures: int) -> None:
        """Wait before the next try; a shutdown drain shortens the wait, since its time is bounded anyway."""
        self._mark("backing_off")
        delay = self._delay(failures - 1)
        if self._flush.is_set():
            delay = min(delay, _DRAIN_RETRY_S)
        await asyncio.sleep(delay)

    async def _close(self) -> None:
        self._connected = False
        try:
            await self.sink.close()
        except Exception:
            self._log.exception("sink close failed")

    def _mark(self, state: str) -> None:
        if state != self.status.state:
            self.status.state = state
            self.status.since = utc_now()
