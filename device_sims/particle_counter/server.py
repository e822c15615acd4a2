"""The pymodbus server that puts counter devices on a wire: Modbus TCP, or Modbus RTU on a serial path.

Request-level behaviour goes through pymodbus's SimDevice `action` hook: before a read the device renders
its registers from the model, after a read it applies side effects (NEW DATA), and writes go to the device
instead of being stored blindly. Link faults use the server's two trace hooks, which see every frame:

* `trace_pdu` on receive may return None, and pymodbus then drops the request without answering. That is
  how `stall` keeps a connection open but silent, and how an RTU line stays silent for a unit id nobody
  on it owns (pymodbus would otherwise answer exception 4 and log a KeyError traceback);
* `trace_packet` on send replaces the encoded response with bytes that are not a frame (`garbage`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Literal, cast

import structlog
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simdevice import SimAction

from gateway.errors import SimulatorError

from .faults import LinkFaults, garbage_frame
from .profiles import CounterDevice, Span, Table
from .profiles.base import TABLE_OF_FUNCTION

log = structlog.get_logger(__name__)

TransportName = Literal["tcp", "rtu"]
#: The order of the four blocks in a non-shared SimDevice.
TABLE_ORDER = (Table.COILS, Table.DISCRETE_INPUTS, Table.HOLDING, Table.INPUT)
BIT_TABLES = frozenset({Table.COILS, Table.DISCRETE_INPUTS})
SINGLE_WRITES = frozenset({5, 6})
#: Unit id of the catch-all device that answers for absent units on TCP.
CATCH_ALL_ID = 0
RTU_BAUDRATE = 19200  # a pty ignores it; kept for a realistic serial configuration


def _register_block(spans: tuple[Span, ...]) -> list[SimData]:
    if not spans:  # pymodbus needs one entry per table; a single invalid register answers exception 2
        return [SimData(address=0, datatype=DataType.INVALID)]
    return [
        SimData(address=s.start, count=s.count, values=0, datatype=DataType.REGISTERS, readonly=not s.writable)
        for s in spans
    ]


def _bit_block(spans: tuple[Span, ...]) -> list[SimData]:
    if not spans:
        spans = (Span(0, 16),)
    return [SimData(address=s.start, values=[False] * s.count, datatype=DataType.BITS) for s in spans]


def _paint(table: Table, start: int, registers: list[int], image: Mapping[int, int]) -> None:
    """Copy a rendered image into pymodbus's register list (bit tables hold 16 coils per register)."""
    size = len(registers)
    if table in BIT_TABLES:
        for address, bit in image.items():
            index = address // 16 - start
            if 0 <= index < size:
                mask = 1 << (address % 16)
                registers[index] = (registers[index] | mask) if bit else (registers[index] & ~mask)
        return
    for address, value in image.items():
        index = address - start
        if 0 <= index < size:
            registers[index] = value


async def _answer_absent_unit(*_args: object) -> ExcCodes:
    """TCP only: a request for a unit id nobody serves gets 'gateway target failed to respond' (0x0B)."""
    return ExcCodes.GATEWAY_NO_RESPONSE


def _catch_all_device() -> SimDevice:
    """A device behind unit id 0 that covers every address, so its action answers every request."""
    registers = [SimData(address=0, count=65536, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(id=CATCH_ALL_ID, simdata=registers, action=_answer_absent_unit)


class ModbusLink:
    """One wire (a TCP listener or one RS-485 line) carrying one or more counter devices."""

    def __init__(
        self,
        devices: Mapping[int, CounterDevice],
        transport: TransportName,
        faults: LinkFaults,
        rng: random.Random,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        serial_port: str | None = None,
    ) -> None:
        if transport == "rtu" and not serial_port:
            raise ValueError("an RTU link needs the serial device path")
        self.devices = devices
        self.transport = transport
        self.faults = faults
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self._rng = rng
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    @property
    def running(self) -> bool:
        """True while the server listens (TCP) or holds the serial port open (RTU)."""
        return self._server is not None

    async def start(self) -> None:
        """Listen on the configured address (the same port again after `drop`); SimulatorError if not."""
        if self._server is not None:
            return
        simdevices = [
            SimDevice(id=uid, simdata=self._blocks(dev), action=self._action(dev)) for uid, dev in self.devices.items()
        ]
        # trace_pdu may return None to drop a request; pymodbus types it as always returning a PDU.
        trace_pdu = cast(Callable[[bool, ModbusPDU], ModbusPDU], self._trace_pdu)
        server: ModbusTcpServer | ModbusSerialServer
        if self.transport == "tcp":
            simdevices.append(_catch_all_device())
            server = ModbusTcpServer(
                simdevices, address=(self.host, self.port), trace_packet=self._trace_packet, trace_pdu=trace_pdu
            )
            where = f"{self.host}:{self.port}"
        else:
            server = ModbusSerialServer(
                simdevices,
                framer=FramerType.RTU,
                port=cast(str, self.serial_port),
                baudrate=RTU_BAUDRATE,
                trace_packet=self._trace_packet,
                trace_pdu=trace_pdu,
            )
            where = cast(str, self.serial_port)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise SimulatorError(
                f"particle counter simulator cannot listen on {where}: port in use or unavailable"
            ) from exc
        if self.transport == "tcp":
            self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._server = server

    def drop(self) -> None:
        """Close the listener and every open connection at once (the `disconnect` fault).

        Synchronous on purpose: closing sockets needs no await, and `inject()` stays a plain call.
        """
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def stop(self) -> None:
        """Shut the server down and let the closed connections' callbacks run."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
        await asyncio.sleep(0)

    # -- hooks ---------------------------------------------------------------------------------
    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        if sending:
            return pdu
        if self.faults.stall:
            return None
        device = self.devices.get(pdu.dev_id)
        if device is None:
            # A real RS-485 line stays silent for an absent unit; on TCP the catch-all device answers.
            return None if self.transport == "rtu" else pdu
        if device.model.faults.stall:
            return None
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending and self.faults.garbage:
            return garbage_frame(self._rng, rtu=self.transport == "rtu")
        return data

    def _blocks(self, device: CounterDevice) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
        blocks = [
            _bit_block(device.layout.get(t, ())) if t in BIT_TABLES else _register_block(device.layout.get(t, ()))
            for t in TABLE_ORDER
        ]
        return blocks[0], blocks[1], blocks[2], blocks[3]

    def _action(self, device: CounterDevice) -> SimAction:
        loop = asyncio.get_running_loop()

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if self.faults.illegal_address or device.model.faults.illegal_address:
                return ExcCodes.ILLEGAL_ADDRESS
            if function_code not in device.function_codes:
                return ExcCodes.ILLEGAL_FUNCTION
            table = TABLE_OF_FUNCTION[function_code]
            now = loop.time()
            device.model.advance(now)
            if set_values is not None:
                return device.write(table, address, [int(v) for v in set_values], now)
            if function_code in SINGLE_WRITES:
                return None  # the read-back pymodbus does to echo a single write: keep what was written
            _paint(table, start_address, registers, device.image(table, now))
            device.after_read(table, address, count, now)
            return None

        return action
