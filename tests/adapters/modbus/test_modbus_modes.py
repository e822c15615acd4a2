"""Acquisition logic against in-process fake buses: which records are read, in which order, once.

The fakes model only what the modes rely on (a Lighthouse record buffer with count, index and NEW DATA;
an AirNet queue with its data-available coil). The real wire is covered by tests/integration against
the simulator; here the corner cases are cheap and exact: bounded catch-up, restart, a full buffer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.modbus import ModbusAdapter, ModbusEquipmentConfig, plugin
from adapters.modbus.bus import BusSettings
from gateway.adapter import SharedResources
from gateway.errors import CommunicationError
from gateway.records import ReadingBatch


class FakeBus:
    """Answers reads from ``render`` and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ...]] = []
        self.closed = 0
        self.down = False

    async def __aenter__(self) -> FakeBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed += 1

    def check_compatible(self, settings: BusSettings, equipment_id: str) -> None:
        pass

    async def connect(self, equipment_id: str) -> None:
        if self.down:
            raise CommunicationError("down", equipment_id=equipment_id)

    async def read(self, table: str, address: int, count: int, *, device_id: int, equipment_id: str) -> list[Any]:
        if self.down:
            raise CommunicationError("down", equipment_id=equipment_id)
        self.requests.append(("read", table, str(address), str(count)))
        image = self.render(table)
        return [image.get(a, 0) for a in range(address, address + count)]

    def render(self, table: str) -> dict[int, Any]:
        raise NotImplementedError

    async def write_register(self, address: int, value: int, *, device_id: int, equipment_id: str) -> None:
        self.requests.append(("write", "holding", str(address), str(value & 0xFFFF)))
        self.on_write(address, value & 0xFFFF)

    async def write_coil(self, address: int, value: bool, *, device_id: int, equipment_id: str) -> None:
        self.requests.append(("write", "coil", str(address), str(int(value))))
        self.on_write(address, int(value))

    def on_write(self, address: int, value: int) -> None:
        raise NotImplementedError


class FakeLighthouse(FakeBus):
    def __init__(self, capacity: int = 3000) -> None:
        super().__init__()
        self.records: list[int] = []  # each record is its timestamp
        self.index = 0xFFFF
        self.new_data = False
        self.capacity = capacity
        self.clock = 1_700_000_000

    def sample(self, n: int = 1) -> None:
        for _ in range(n):
            self.clock += 60
            self.records.append(self.clock)
            if len(self.records) > self.capacity:
                self.records.pop(0)
            self.new_data = True

    def restart(self) -> None:
        self.records.clear()
        self.new_data = False

    def render(self, table: str) -> dict[int, Any]:
        if table == "holding":
            return {2: 0b11 | (4 if self.new_data else 0), 22: 100, 23: len(self.records), 24: self.index}
        self.new_data = False  # reading a record clears NEW DATA
        if not self.records:
            return {73: 15}
        ts = self.records[-1] if self.index == 0xFFFF else self.records[self.index]
        return {0: ts >> 16, 1: ts & 0xFFFF, 3: 60, 73: 15}

    def on_write(self, address: int, value: int) -> None:
        assert address == 24
        self.index = value


class FakeAirNet(FakeBus):
    def __init__(self) -> None:
        super().__init__()
        self.queue: list[int] = []
        self.pops = 0

    def render(self, table: str) -> dict[int, Any]:
        if table == "coil":
            return {0: True, 1: bool(self.queue), 7: False}
        if not self.queue:
            return {}
        ts = self.queue[0]
        return {215: ts >> 16, 216: ts & 0xFFFF, 220: 0b111, 226: 2}

    def on_write(self, address: int, value: int) -> None:
        assert (address, value) == (1, 0), "the only write is the pop"
        self.queue.pop(0)
        self.pops += 1


def config(register_map: str) -> ModbusEquipmentConfig:
    return ModbusEquipmentConfig.model_validate({
        "id": "PC-1", "class": "particle_counter", "kind": "modbus", "transport": "tcp", "host": "fake",
        "port": 502, "device_id": 1, "register_map": register_map, "poll_interval_s": 0.001,
    })


async def adapter_on(resources: SharedResources, bus: FakeBus, register_map: str) -> ModbusAdapter:
    eq = config(register_map)
    adapter = plugin.create(eq, resources)
    assert isinstance(adapter, ModbusAdapter)
    await resources.get(adapter.settings.key, lambda: bus)
    return adapter


async def cycle(adapter: ModbusAdapter) -> list[ReadingBatch]:
    """One poll's batches, each acknowledged as the core would after committing it."""
    out = []
    async for batch in adapter._mode.cycle():
        out.append(batch)
        await adapter.acknowledge(batch)
    return out


def stamps(batches: list[ReadingBatch]) -> list[int]:
    return [r.value for b in batches for r in b.readings if r.point == "sample_timestamp"]


@pytest.fixture
async def resources() -> AsyncIterator[SharedResources]:
    async with SharedResources() as res:
        yield res


async def test_lighthouse_selects_the_latest_record_at_connect_and_reads_each_record_once(
    resources: SharedResources,
) -> None:
    bus = FakeLighthouse()
    bus.index = 7  # someone left another record selected
    bus.sample(3)
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        assert bus.requests[0] == ("write", "holding", "24", "65535")  # the select the device needs
        first = await cycle(adapter)
        assert stamps(first) == [bus.records[-1]]  # first contact: the newest record, not the history
        assert await cycle(adapter) == []  # nothing new: nothing emitted
        bus.sample()
        assert stamps(await cycle(adapter)) == [bus.records[-1]]
        assert bus.index == 0xFFFF


async def test_lighthouse_reads_missed_records_oldest_first_and_restores_the_index(resources: SharedResources) -> None:
    bus = FakeLighthouse()
    bus.sample()
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        await cycle(adapter)
        bus.sample(5)  # an outage: five records while nobody read
        bus.requests.clear()
        got = await cycle(adapter)
        assert stamps(got) == bus.records[1:6]
        assert bus.index == 0xFFFF
        writes = [r[3] for r in bus.requests if r[0] == "write"]
        assert writes == ["1", "2", "3", "4", "5", "65535"]  # by index, oldest first, then back to latest


async def test_lighthouse_catch_up_is_bounded_per_poll_and_loses_nothing(resources: SharedResources) -> None:
    bus = FakeLighthouse()
    bus.sample()
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        await cycle(adapter)
        bus.sample(250)
        polls = [await cycle(adapter) for _ in range(3)]
        assert [len(p) for p in polls] == [100, 100, 50]
        assert [s for p in polls for s in stamps(p)] == bus.records[1:]


async def test_lighthouse_cursor_survives_a_new_adapter(resources: SharedResources) -> None:
    """The supervisor builds a new adapter after a failure; missed records must still be read back."""
    bus = FakeLighthouse()
    bus.sample()
    async with await adapter_on(resources, bus, "lighthouse-remote") as adapter:
        await cycle(adapter)
    bus.sample(3)
    async with plugin.create(config("lighthouse-remote"), resources) as again:
        assert stamps(await cycle(again)) == bus.records[1:]  # type: ignore[arg-type]


async def test_lighthouse_restart_is_an_event_and_the_new_records_are_read(resources: SharedResources) -> None:
    bus = FakeLighthouse()
    bus.sample(4)
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        await cycle(adapter)
        bus.restart()
        (empty,) = await cycle(adapter)
        assert empty.events == [("device_restart", "record count went from 4 to 0")]
        assert stamps([empty]) == []  # no record to show, the event is the news
        bus.sample(2)
        got = await cycle(adapter)
        assert stamps(got) == bus.records and all(b.events == [] for b in got)
        bus.restart()
        bus.sample(1)  # restarted and already sampled again: count 1 < 2
        (again,) = await cycle(adapter)
        assert again.events == [("device_restart", "record count went from 2 to 1")]
        assert stamps([again]) == bus.records


async def test_lighthouse_full_buffer_is_read_by_new_data(resources: SharedResources) -> None:
    bus = FakeLighthouse(capacity=3)
    bus.sample(3)
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        await cycle(adapter)
        bus.sample()  # the count stays at 3: only NEW DATA says a record came
        assert stamps(await cycle(adapter)) == [bus.records[-1]]
        assert await cycle(adapter) == []


async def test_lighthouse_look_moves_no_cursor(resources: SharedResources) -> None:
    bus = FakeLighthouse()
    bus.sample(2)
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        look = await adapter.read_once()
        assert look is not None and stamps([look]) == [bus.records[-1]]
        assert adapter.cursor.next_index is None


async def test_airnet_pops_only_when_acknowledged(resources: SharedResources) -> None:
    bus = FakeAirNet()
    bus.queue = [1_700_000_060, 1_700_000_120, 1_700_000_180]
    adapter = await adapter_on(resources, bus, "pms-airnet2")
    async with adapter:
        gen = adapter._mode.cycle()
        first = await gen.__anext__()
        assert stamps([first]) == [1_700_000_060] and bus.pops == 0  # read, not popped
        with pytest.raises(StopAsyncIteration):
            await gen.__anext__()  # not acknowledged: the drain stops, the packet stays queued
        assert bus.pops == 0 and len(bus.queue) == 3
        got = await cycle(adapter)  # the same packet again, then the rest, each popped after its ack
        assert stamps(got) == [1_700_000_060, 1_700_000_120, 1_700_000_180]
        assert bus.pops == 3 and bus.queue == []
        await adapter.acknowledge(got[0])  # a second acknowledgement of one batch pops nothing
        assert bus.pops == 3
        assert await adapter.read_once() is None  # an empty queue is no batch


async def test_closing_the_last_user_closes_the_link_and_a_dead_link_raises(resources: SharedResources) -> None:
    bus = FakeLighthouse()
    adapter = await adapter_on(resources, bus, "lighthouse-remote")
    async with adapter:
        pass
    assert bus.closed == 1
    bus.down = True
    with pytest.raises(CommunicationError):
        async with adapter:
            pass
    with pytest.raises(CommunicationError, match="not connected"):
        _ = adapter.bus
