"""The Modbus adapter: one device (a unit id on a bus), read the way its register map says.

Lifecycle (see :mod:`gateway.adapter`)::

    async with ModbusAdapter(equipment, register_map, resources) as adapter:  # bus open, writes done
        async for batch in adapter.batches():                                  # per poll: 0..n batches
            ...commit...
            await adapter.acknowledge(batch)                                   # queue mode pops here

The adapter only moves registers: the bus does I/O and error translation, :mod:`.reader` decodes,
:mod:`.modes` decides which registers make a sample. Closing the adapter releases the bus but closes it
only when no other device uses it, so one bad unit on an RS-485 line never takes the others down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import structlog

from adapters.modbus.blocks import Block
from adapters.modbus.bus import BusSettings, ModbusBus
from adapters.modbus.config import ModbusEquipmentConfig
from adapters.modbus.modes import Cursor, Mode, make_mode
from adapters.modbus.reader import BatchBuilder, PointReader
from adapters.modbus.registermap import ModbusPoint, RegisterMap
from gateway.adapter import PollingAdapter, SharedResources
from gateway.errors import CommunicationError
from gateway.records import ReadingBatch

log = structlog.get_logger(__name__)


def bus_settings(equipment: ModbusEquipmentConfig) -> BusSettings:
    return BusSettings(
        transport=equipment.transport, host=equipment.host, port=equipment.port,
        serial_port=equipment.serial_port, baudrate=equipment.baudrate, parity=equipment.parity,
        stopbits=equipment.stopbits, bytesize=equipment.bytesize, timeout_s=equipment.timeout_s,
        retries=equipment.retries,
    )


class _Users:
    """Which devices have a bus open right now, so the last one out closes the link."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def __aenter__(self) -> _Users:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.ids.clear()


class ModbusAdapter(PollingAdapter):
    """A polled Modbus device. ``batches()`` yields what the device has new, in the order it happened."""

    def __init__(self, equipment: ModbusEquipmentConfig, register_map: RegisterMap, resources: SharedResources):
        super().__init__(poll_interval_s=equipment.poll_interval_s, equipment_id=equipment.id)
        self.equipment = equipment
        self.register_map = register_map
        self.resources = resources
        self.settings = bus_settings(equipment)
        self.builder = BatchBuilder(
            register_map, endpoint=self.settings.endpoint, device_id=equipment.device_id, equipment_id=equipment.id
        )
        self.sources = self.builder.sources
        self.cursor = Cursor()
        self._bus: ModbusBus | None = None
        self._users: _Users | None = None
        self._log = log.bind(equipment_id=equipment.id, endpoint=self.settings.endpoint, unit=equipment.device_id)
        self._mode: Mode = make_mode(self)

    # -- used by the modes -------------------------------------------------------------------------
    @property
    def bus(self) -> ModbusBus:
        if self._bus is None:
            raise CommunicationError("not connected", equipment_id=self.equipment.id, address=self.settings.endpoint)
        return self._bus

    def point_reader(self, blocks: Sequence[Block]) -> PointReader:
        eq = self.equipment
        return PointReader(blocks, self.register_map, device_id=eq.device_id, equipment_id=eq.id)

    async def write_register(self, point: ModbusPoint, value: int) -> None:
        eq = self.equipment
        await self.bus.write_register(point.address, value, device_id=eq.device_id, equipment_id=eq.id)

    async def write_coil(self, point: ModbusPoint, value: bool) -> None:
        eq = self.equipment
        await self.bus.write_coil(point.address, value, device_id=eq.device_id, equipment_id=eq.id)

    # -- PollingAdapter ------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open (or join) the bus, then run the map's writes: the mode's record select and any
        ``on_connect_writes`` the map lists (none in the shipped maps: the gateway reads, it does not
        command, unless a map says so and why)."""
        settings, eq = self.settings, self.equipment
        bus = await self.resources.get(settings.key, lambda: ModbusBus(settings))
        bus.check_compatible(settings, eq.id)
        self._users = await self.resources.get((*settings.key, "users"), _Users)
        self.cursor = await self.resources.get(("modbus", "cursor", eq.id), lambda: contextlib.nullcontext(Cursor()))
        self._users.ids.add(eq.id)
        self._bus = bus
        await bus.connect(eq.id)
        for w in self.register_map.acquisition.on_connect_writes:
            point = self.register_map.points[w.point]
            self._log.info("writing at connect", point=w.point, value=w.value, why=w.why)
            if point.table == "coil":
                await self.write_coil(point, bool(w.value))
            else:
                await self.write_register(point, w.value)
        await self._mode.on_connect()
        self._log.debug("connected", mode=self.register_map.acquisition.mode)

    async def close(self) -> None:
        """Leave the bus; the last device to leave closes the link, so a reconnect starts clean."""
        bus, users, self._bus = self._bus, self._users, None
        if users is not None:
            users.ids.discard(self.equipment.id)
        if bus is not None and users is not None and not users.ids:
            bus.close()

    async def read_once(self) -> ReadingBatch | None:
        """The sample the device shows now (commissioning: ``read-once``). Moves no cursor, pops nothing."""
        return await self._mode.look()

    def poll(self) -> AsyncIterator[ReadingBatch]:
        """Every new sample once, oldest first; a poll may yield several (missed records, a queue).

        The mode's own generator, handed over as it is (the caller closes it): no layer of its own.
        """
        return self._mode.cycle()

    @property
    def needs_acknowledge(self) -> bool:  # type: ignore[override]
        """Queue mode pops on acknowledge, so each packet is committed before the next is read."""
        return self.register_map.acquisition.mode == "queue"

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Called by the core after the journal committed ``batch``; queue mode pops the packet here."""
        await self._mode.acknowledge(batch)
