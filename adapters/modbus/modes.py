"""How samples are taken off each kind of counter: live registers, a record buffer, a packet queue.

Each mode is one ``cycle()``: an async generator yielding the batches of one poll. The consumer
commits (and acknowledges) a batch before it asks for the next, so code after a ``yield`` runs only
once the batch is durable; that is where a cursor advances and where nothing is popped early.

The cursor (what was last delivered) lives in :class:`Cursor`, kept for the life of the runtime in
SharedResources: the supervisor builds a new adapter after every failure, and a cursor that died with
the adapter would make a Lighthouse outage look like "no records missed".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.modbus.blocks import plan_blocks
from adapters.modbus.reader import Decoded, PointReader
from adapters.modbus.registermap import (
    LatestRecordAcquisition,
    LiveAcquisition,
    ModbusPoint,
    QueueAcquisition,
    RegisterMap,
)
from gateway.errors import ProtocolError
from gateway.records import ReadingBatch, utc_now

if TYPE_CHECKING:
    from adapters.modbus.adapter import ModbusAdapter

LATEST = -1


@dataclass
class Cursor:
    """What one device has delivered so far (per runtime)."""

    #: live: raw bytes of the last sample key emitted.
    last_key: tuple[bytes, ...] | None = None
    #: latest_record: index of the next record not yet delivered; None before the first contact.
    next_index: int | None = None
    #: latest_record: the record count seen at the last poll, for the restart event's wording.
    last_count: int | None = None


@dataclass
class PopToken:
    """Queue mode: the packet of this batch is popped by ``acknowledge``, once."""

    acknowledged: bool = False


def readers(register_map: RegisterMap, names: list[str], adapter: ModbusAdapter) -> list[PointReader]:
    """One PointReader per block of the named points (so a mode can read some blocks and not others)."""
    points: list[ModbusPoint] = [register_map.points[n] for n in names]
    if not points:
        return []
    blocks = plan_blocks(
        points, max_gap_registers=register_map.max_gap_registers, max_gap_bits=register_map.max_gap_bits
    )
    return [adapter.point_reader([b]) for b in blocks]


def record_and_control_readers(
    adapter: ModbusAdapter, record_table: str
) -> tuple[list[PointReader], list[PointReader]]:
    """Readers for a buffered device: the record's table, and the control registers around it.

    Control registers hold the device's state now, not the record's, so they carry no sample time.
    """
    rmap = adapter.register_map
    record = [n for n, p in rmap.points.items() if p.table == record_table]
    control = [n for n, p in rmap.points.items() if p.table != record_table]
    adapter.builder.untimed = frozenset(control)
    return readers(rmap, control, adapter), readers(rmap, record, adapter)


class LiveMode:
    """MET ONE 6000 style: the newest sample sits in registers; emit each sample once."""

    def __init__(self, adapter: ModbusAdapter, acq: LiveAcquisition) -> None:
        self.adapter = adapter
        self.acq = acq
        rmap = adapter.register_map
        all_readers = readers(rmap, list(rmap.points), adapter)
        key = set(acq.sample_key)
        self.key_readers = [r for r in all_readers if key & set(r.point_names)] if key else []
        self.rest_readers = [r for r in all_readers if r not in self.key_readers]

    async def on_connect(self) -> None:
        """Nothing to select: the live block always shows the newest sample."""

    async def cycle(self) -> AsyncIterator[ReadingBatch]:
        ad = self.adapter
        decoded: dict[str, Decoded] = {}
        for r in self.key_readers:
            await r.read(ad.bus, decoded)
        key: tuple[bytes, ...] | None = None
        if self.acq.sample_key:
            key = tuple(decoded[n].raw for n in self.acq.sample_key)
            if key == ad.cursor.last_key:
                return
            if not any(any(part) for part in key):
                return  # an all-zero key: the device has no sample yet
        for r in self.rest_readers:
            await r.read(ad.bus, decoded)
        yield ad.builder.build(decoded, utc_now())
        ad.cursor.last_key = key

    async def look(self) -> ReadingBatch:
        """The sample the device shows now, whether or not it was delivered before."""
        decoded: dict[str, Decoded] = {}
        for r in (*self.key_readers, *self.rest_readers):
            await r.read(self.adapter.bus, decoded)
        return self.adapter.builder.build(decoded, utc_now())

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Live registers need no acknowledgement."""


class LatestRecordMode:
    """Lighthouse style: a record buffer, a record count, and an index register selecting a record."""

    def __init__(self, adapter: ModbusAdapter, acq: LatestRecordAcquisition) -> None:
        self.adapter = adapter
        self.acq = acq
        self.control_readers, self.record_readers = record_and_control_readers(adapter, acq.record_table)
        self.index_point = adapter.register_map.points[acq.record_index_point]

    async def on_connect(self) -> None:
        """Select the latest record (index -1). The device needs this: 40025 keeps whatever index was
        last written, by us or anyone, and the 3xxxx registers show that record, not the newest."""
        await self._select(LATEST)

    async def _select(self, index: int) -> None:
        await self.adapter.write_register(self.index_point, index)

    async def _read_record(self, control: dict[str, Decoded]) -> dict[str, Decoded]:
        decoded = dict(control)
        for r in self.record_readers:
            await r.read(self.adapter.bus, decoded)
        return decoded

    async def cycle(self) -> AsyncIterator[ReadingBatch]:
        ad, acq, cur = self.adapter, self.acq, self.adapter.cursor
        control: dict[str, Decoded] = {}
        for r in self.control_readers:
            await r.read(ad.bus, control)
        status, count = control[acq.status_point].value, control[acq.record_count_point].value
        if not isinstance(status, int) or not isinstance(count, int):
            raise ProtocolError(
                f"status or record count did not decode ({status!r}, {count!r})",
                equipment_id=ad.equipment.id, address=ad.sources[acq.record_count_point],
            )
        new_data = bool((status >> acq.new_data_bit) & 1)
        events: list[tuple[str, str]] = []
        if cur.next_index is None:  # first contact in this runtime: start from the newest record
            cur.next_index = count - 1 if new_data and count > 0 else count
        elif cur.last_count is not None and count < cur.last_count:
            events.append(("device_restart", f"record count went from {cur.last_count} to {count}"))
            cur.next_index = 0
        cur.last_count = count
        if count > cur.next_index:
            async for batch in self._catch_up(control, count, events):
                yield batch
            return
        if events:  # restarted with an empty buffer: the event is news by itself
            yield ad.builder.build(control, utc_now(), events=events)
            return
        if new_data:  # count did not move but a record is new: the buffer is full and wraps
            yield ad.builder.build(await self._read_record(control), utc_now())

    async def _catch_up(
        self, control: dict[str, Decoded], count: int, events: list[tuple[str, str]]
    ) -> AsyncIterator[ReadingBatch]:
        """Records next_index .. count-1 by explicit index, oldest first, at most max_catch_up per poll;
        the rest follow at the next poll, so an outage shorter than the device buffer loses nothing."""
        ad, cur = self.adapter, self.adapter.cursor
        assert cur.next_index is not None
        last = min(count, cur.next_index + self.acq.max_catch_up)
        for index in range(cur.next_index, last):
            await self._select(index)
            batch = ad.builder.build(await self._read_record(control), utc_now(), events=events)
            events = []
            yield batch
            cur.next_index = index + 1
        await self._select(LATEST)

    async def look(self) -> ReadingBatch | None:
        """The newest record (index -1), without moving the cursor; None while the buffer is empty."""
        await self._select(LATEST)
        control: dict[str, Decoded] = {}
        for r in self.control_readers:
            await r.read(self.adapter.bus, control)
        if control[self.acq.record_count_point].value == 0:
            return None
        return self.adapter.builder.build(await self._read_record(control), utc_now())

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Records stay in the device buffer: nothing to acknowledge."""


class QueueMode:
    """AirNet II style: the oldest queued packet is shown until the host pops it (coil 2 := 0)."""

    def __init__(self, adapter: ModbusAdapter, acq: QueueAcquisition) -> None:
        self.adapter = adapter
        self.acq = acq
        self.control_readers, self.record_readers = record_and_control_readers(adapter, acq.record_table)
        self.available = adapter.register_map.points[acq.available_point]

    async def on_connect(self) -> None:
        """Nothing to select: the queue shows its oldest packet."""

    async def _read_head(self) -> dict[str, Decoded] | None:
        """The oldest queued packet with the control points, or None when the queue is empty."""
        decoded: dict[str, Decoded] = {}
        for r in self.control_readers:
            await r.read(self.adapter.bus, decoded)
        if decoded[self.available.name].value is not True:
            return None
        for r in self.record_readers:
            await r.read(self.adapter.bus, decoded)
        return decoded

    async def cycle(self) -> AsyncIterator[ReadingBatch]:
        for _ in range(self.acq.max_per_poll):
            decoded = await self._read_head()
            if decoded is None:
                return
            token = PopToken()
            yield self.adapter.builder.build(decoded, utc_now(), token=token)
            if not token.acknowledged:
                return  # not committed: the packet stays queued and is read again at the next poll

    async def look(self) -> ReadingBatch | None:
        """The oldest queued packet, not popped (its token pops it only if acknowledged)."""
        decoded = await self._read_head()
        return None if decoded is None else self.adapter.builder.build(decoded, utc_now(), token=PopToken())

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Pop the packet of ``batch``: only here, which the core calls after the journal commit."""
        token: Any = batch.token
        if not isinstance(token, PopToken) or token.acknowledged:
            return
        await self.adapter.write_coil(self.available, False)
        token.acknowledged = True


Mode = LiveMode | LatestRecordMode | QueueMode


def make_mode(adapter: ModbusAdapter) -> Mode:
    acq = adapter.register_map.acquisition
    if isinstance(acq, LiveAcquisition):
        return LiveMode(adapter, acq)
    if isinstance(acq, LatestRecordAcquisition):
        return LatestRecordMode(adapter, acq)
    return QueueMode(adapter, acq)
