"""What an append returns: where its records landed, with the records built only when asked for.

Building a ProcessRecord costs about as much as the rest of journalling it (a pydantic validation
per record), and the hot path (a device task acknowledging a read) needs only the seqs. So
:class:`Committed` keeps the drafts and the hashes the writer assigned and builds each record on
access; iterating it gives exactly the records that ``read()`` will return for those seqs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

from gateway.records import ProcessRecord, RecordDraft


class Committed(Sequence[ProcessRecord]):
    """The durable records of one ``Journal.append`` call, in order: a read-only sequence.

    ``seqs`` is the contiguous range they hold (one append is never split across transactions),
    ``hashes`` their hashes; ``committed[i]`` or iteration builds the ProcessRecords.
    """

    __slots__ = ("_drafts", "first_seq", "gateway_id", "hashes", "prev_hash")

    def __init__(
        self, gateway_id: str, drafts: Sequence[RecordDraft], first_seq: int, prev_hash: str, hashes: Sequence[str]
    ) -> None:
        if len(drafts) != len(hashes):
            raise ValueError("one hash per draft")
        self.gateway_id = gateway_id
        self.first_seq = first_seq
        #: ``prev_hash`` of the first record: the hash of the record at ``first_seq - 1``.
        self.prev_hash = prev_hash
        self.hashes = tuple(hashes)
        self._drafts = tuple(drafts)

    @property
    def seqs(self) -> range:
        return range(self.first_seq, self.first_seq + len(self.hashes))

    @property
    def last_seq(self) -> int:
        """The last seq of this append (``first_seq - 1`` when it was empty)."""
        return self.first_seq + len(self.hashes) - 1

    def __len__(self) -> int:
        return len(self.hashes)

    @overload
    def __getitem__(self, index: int) -> ProcessRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[ProcessRecord]: ...

    def __getitem__(self, index: int | slice) -> ProcessRecord | list[ProcessRecord]:
        if isinstance(index, slice):
            return [self._build(i) for i in range(*index.indices(len(self)))]
        return self._build(range(len(self))[index])

    def _build(self, i: int) -> ProcessRecord:
        fields = dict(self._drafts[i].__dict__)
        fields.update(
            gateway_id=self.gateway_id,
            seq=self.first_seq + i,
            prev_hash=self.prev_hash if i == 0 else self.hashes[i - 1],
            hash=self.hashes[i],
        )
        return ProcessRecord.model_validate(fields)

    def __repr__(self) -> str:
        return f"Committed(gateway_id={self.gateway_id!r}, seqs={self.first_seq}..{self.last_seq})"


@dataclass(frozen=True, slots=True)
class JournalStats:
    """A snapshot of the writer's counters, for metrics and for tests of group commit."""

    #: Transactions committed (each one fsync at synchronous=full).
    transactions: int
    #: Records committed by this writer since it started.
    rows: int
    #: The most records committed in one transaction (max_batch_rows, unless one append was larger).
    largest_batch: int
    #: Transactions that failed; their appenders got JournalError and no seq was used.
    failed_transactions: int
    #: Records queued and not yet taken into a transaction.
    pending_rows: int
    #: Appends waiting for room in the queue (backpressure).
    waiting_appends: int
    #: The last committed seq (0 for an empty journal).
    last_seq: int
