"""One connection per physical bus, shared by every device on it, and the pymodbus boundary.

A TCP endpoint or a serial port is one bus. Devices on it (unit ids) share the bus through
:class:`~gateway.adapter.SharedResources`, keyed by :func:`bus_key`; a lock keeps one request on the
line at a time, which RS-485 requires. The bus never closes itself because one unit failed to answer:
a dead unit costs its own requests their timeout and nothing else. The link is opened on demand
(at an adapter's connect and before a request if it dropped); retrying with backoff is the
supervisor's job, so pymodbus's own background reconnect is off (``reconnect_delay=0``).

Everything pymodbus raises or returns is translated here, once:

* no answer within the timeout and retries → :class:`DeviceTimeout` (recorded ``Bad_Timeout``)
* refused or lost link, an answer that does not decode → :class:`CommunicationError`
* an exception response → :class:`DeviceReportedError` with the Modbus exception code, except the two
  a TCP-to-RTU gateway sends for a device behind it that does not answer (10, 11): that is the link to
  the device being down, so :class:`CommunicationError`, and the outage is recorded as one
* an answer from the wrong unit, to the wrong function, of the wrong size → :class:`ProtocolError`
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import structlog
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

from gateway.errors import CommunicationError, ConfigError, DeviceReportedError, DeviceTimeout, ProtocolError

log = structlog.get_logger(__name__)

#: Modbus exception codes by number (Modbus Application Protocol v1.1b3, §7).
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
READ_FUNCTIONS = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
#: How pymodbus says a request went unanswered through its timeout and retries (transaction.py).
_NO_RESPONSE = "No response received"
_READ_METHODS = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers", 4: "read_input_registers"}
WRITE_COIL, WRITE_REGISTER = 5, 6
#: "Gateway path unavailable", "gateway target device failed to respond": no device answered.
GATEWAY_NO_ANSWER = frozenset({10, 11})


@dataclass(frozen=True, slots=True)
class BusSettings:
    """What makes two devices share a bus, and what they must then agree on."""

    transport: Literal["tcp", "rtu"]
    host: str | None
    port: int | None
    serial_port: str | None
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int
    timeout_s: float
    retries: int

    @property
    def key(self) -> tuple[str, ...]:
        """The SharedResources key: one per TCP endpoint, one per serial port."""
        if self.transport == "tcp":
            return ("modbus", "tcp", f"{self.host}:{self.port}")
        return ("modbus", "rtu", str(self.serial_port))

    @property
    def endpoint(self) -> str:
        if self.transport == "tcp":
            return f"modbus+tcp://{self.host}:{self.port}"
        return f"modbus+rtu://{self.serial_port}"


def check_response(
    response: Any, *, function_code: int, device_id: int, count: int, equipment_id: str, address: str
) -> None:
    """Refuse any answer that is not the one asked for. Pure: tested without a device.

    pymodbus already drops frames of another unit or transaction, but a bus shared by several devices
    (and a late answer after a timeout) is exactly where a wrong answer would be taken for a right one,
    so each answer is checked here against the request that is being answered.
    """
    fc = getattr(response, "function_code", None)
    unit = getattr(response, "dev_id", None)
    if unit != device_id:
        raise ProtocolError(
            f"answer from unit {unit} to a request for unit {device_id}", equipment_id=equipment_id, address=address
        )
    if isinstance(response, ExceptionResponse) or (isinstance(fc, int) and fc & 0x80):
        if not isinstance(fc, int) or fc & 0x7F != function_code:
            raise ProtocolError(
                f"exception answer to function {fc and fc & 0x7F} for a request of function {function_code}",
                equipment_id=equipment_id, address=address,
            )
        code = getattr(response, "exception_code", None)
        name = EXCEPTION_NAMES.get(code, "unknown exception") if isinstance(code, int) else "no code"
        if code in GATEWAY_NO_ANSWER:
            raise CommunicationError(
                f"the Modbus gateway reports no answer from the unit: exception {code} ({name})",
                equipment_id=equipment_id, address=address,
            )
        raise DeviceReportedError(
            f"device answered Modbus exception {code} ({name}) to function {function_code}",
            code=code, equipment_id=equipment_id, address=address,
        )
    if fc != function_code:
        raise ProtocolError(
            f"answer of function {fc} to a request of function {function_code}",
            equipment_id=equipment_id, address=address,
        )
    if function_code in (3, 4):
        registers = getattr(response, "registers", None)
        if not isinstance(registers, list) or len(registers) != count:
            got = len(registers) if isinstance(registers, list) else "no"
            raise ProtocolError(f"asked for {count} registers, got {got}", equipment_id=equipment_id, address=address)
    elif function_code in (1, 2):
        bits = getattr(response, "bits", None)
        if not isinstance(bits, list) or len(bits) < count or len(bits) >= count + 8:
            got = len(bits) if isinstance(bits, list) else "no"
            raise ProtocolError(f"asked for {count} bits, got {got}", equipment_id=equipment_id, address=address)


class ModbusBus:
    """A Modbus client for one bus, used through SharedResources (enter once, close at runtime stop)."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        # pymodbus's own timeout handles a silent device; this bounds a request whatever happens inside.
        self._guard_s = settings.timeout_s * (settings.retries + 1) + 1.0
        self._undecodable = 0  # answers dropped because they did not decode (see _drop_undecodable)
        self._log = log.bind(bus=settings.endpoint)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the link; the next request or connect opens it again."""
        if self._client is not None:
            self._client.close()
            self._client = None
            self._log.debug("link closed")

    def check_compatible(self, settings: BusSettings, equipment_id: str) -> None:
        """Devices sharing a line must agree on its settings; a silent mismatch would be a wrong read."""
        if settings != self.settings:
            raise ConfigError(
                f"{equipment_id}: shares {self.settings.endpoint} with another device but with different "
                f"line settings, timeout or retries ({settings} vs {self.settings})"
            )

    async def connect(self, equipment_id: str) -> None:
        """Open the link if it is not open; CommunicationError if the endpoint cannot be reached."""
        async with self._lock:
            await self._ensure_open(equipment_id)

    async def _ensure_open(self, equipment_id: str) -> Any:
        client = self._client
        if client is None:
            client = self._client = self._make_client()
        if not client.connected:
            try:
                ok = await client.connect()
            except (OSError, ModbusException) as exc:
                raise CommunicationError(f"cannot open the link: {exc}", equipment_id=equipment_id,
                                         address=self.settings.endpoint) from exc
            if not ok:
                raise CommunicationError("cannot open the link (refused, absent or timed out)",
                                         equipment_id=equipment_id, address=self.settings.endpoint)
            self._log.info("link open", equipment_id=equipment_id)
        return client

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        s = self.settings
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if s.transport == "tcp":
            client = AsyncModbusTcpClient(
                str(s.host), port=int(s.port or 502), timeout=s.timeout_s, retries=s.retries, reconnect_delay=0
            )
        else:
            client = AsyncModbusSerialClient(
                str(s.serial_port), framer=FramerType.RTU, baudrate=s.baudrate, parity=s.parity,
                stopbits=s.stopbits, bytesize=s.bytesize, timeout=s.timeout_s, retries=s.retries, reconnect_delay=0,
            )
        _drop_undecodable(client, self._count_undecodable)
        return client

    async def read(self, table: str, address: int, count: int, *, device_id: int, equipment_id: str) -> list[Any]:
        """``count`` registers (ints) or bits (bools) of ``table`` from ``address``."""
        fc = READ_FUNCTIONS[table]
        where = f"{self.settings.endpoint}/{device_id}/{table}/{address}+{count}"
        async with self._lock:
            client = self._client
            if client is None or not client.connected:
                client = await self._ensure_open(equipment_id)
            method = getattr(client, _READ_METHODS[fc])
            response = await self._call(equipment_id, where, method, address, count=count, device_id=device_id)
        check_response(response, function_code=fc, device_id=device_id, count=count,
                       equipment_id=equipment_id, address=where)
        if fc <= 2:
            return list(response.bits[:count])
        return response.registers  # type: ignore[no-any-return]  # a list of ints, checked above

    async def write_register(self, address: int, value: int, *, device_id: int, equipment_id: str) -> None:
        """Write one holding register (FC06); -1 .. -32768 are written as their 16-bit two's complement."""
        word = value & 0xFFFF
        where = f"{self.settings.endpoint}/{device_id}/holding/{address}"
        async with self._lock:
            client = await self._ensure_open(equipment_id)
            response = await self._call(equipment_id, where, client.write_register, address, word, device_id=device_id)
        check_response(response, function_code=WRITE_REGISTER, device_id=device_id, count=1,
                       equipment_id=equipment_id, address=where)
        if getattr(response, "address", None) != address or getattr(response, "registers", None) != [word]:
            raise ProtocolError(f"write of {word} was not echoed", equipment_id=equipment_id, address=where)

    async def write_coil(self, address: int, value: bool, *, device_id: int, equipment_id: str) -> None:
        """Write one coil (FC05)."""
        where = f"{self.settings.endpoint}/{device_id}/coil/{address}"
        async with self._lock:
            client = await self._ensure_open(equipment_id)
            response = await self._call(equipment_id, where, client.write_coil, address, value, device_id=device_id)
        check_response(response, function_code=WRITE_COIL, device_id=device_id, count=1,
                       equipment_id=equipment_id, address=where)
        if getattr(response, "address", None) != address or list(getattr(response, "bits", []))[:1] != [value]:
            raise ProtocolError(f"write of coil {int(value)} was not echoed", equipment_id=equipment_id, address=where)

    def _count_undecodable(self) -> None:
        self._undecodable += 1

    def _unanswered(self, message: str, equipment_id: str, where: str, undecodable: int) -> CommunicationError:
        """A request that got no answer. pymodbus lets it run out its timeout whatever happened, so say
        which: an answer came but did not decode, the link was lost under it, or the device was silent
        on a link that is up (the only one recorded Bad_Timeout)."""
        if self._undecodable > undecodable:
            return CommunicationError(f"no valid answer: an answer that does not decode was dropped ({message})",
                                      equipment_id=equipment_id, address=where)
        if self._client is None or not self._client.connected:
            return CommunicationError(f"link lost while waiting for the answer ({message})",
                                      equipment_id=equipment_id, address=where)
        return DeviceTimeout(message, equipment_id=equipment_id, address=where)

    async def _call(self, equipment_id: str, where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Make one pymodbus request and translate whatever it raises (some of it raises before awaiting)."""
        undecodable = self._undecodable
        try:
            async with asyncio.timeout(self._guard_s):
                return await fn(*args, **kwargs)
        except TimeoutError as exc:
            raise self._unanswered(f"no answer within {self._guard_s:.1f} s", equipment_id, where,
                                   undecodable) from exc
        except ConnectionException as exc:
            raise CommunicationError(f"link down: {_text(exc)}", equipment_id=equipment_id, address=where) from exc
        except ModbusIOException as exc:
            if _NO_RESPONSE in str(exc):  # pymodbus's words when its timeout and retries ran out
                raise self._unanswered(f"no answer in time: {_text(exc)}", equipment_id, where, undecodable) from exc
            raise CommunicationError(f"no valid answer: {_text(exc)}", equipment_id=equipment_id,
                                     address=where) from exc
        except OSError as exc:
            raise CommunicationError(f"link error: {exc}", equipment_id=equipment_id, address=where) from exc
        except ModbusException as exc:
            raise ProtocolError(f"malformed exchange: {_text(exc)}", equipment_id=equipment_id,
                                address=where) from exc


def _drop_undecodable(client: AsyncModbusTcpClient | AsyncModbusSerialClient, dropped: Callable[[], None]) -> None:
    """An answer whose frame is whole but whose PDU does not decode (an unknown function code, a byte
    count past its data) makes pymodbus raise inside its protocol callback: asyncio then prints a
    traceback and drops the connection. Such an answer is dropped here instead (``dropped`` counts it), so
    the request ends as one that got no valid answer (CommunicationError after ``timeout_s``), logged once
    like any other.
    Found by the fuzz suite (tests/reliability/fuzz)."""
    framer = client.ctx.framer
    handle_frame = framer.handleFrame

    def handle(data: bytes, exp_devid: int, exp_tid: int) -> tuple[int, Any]:
        try:
            return handle_frame(data, exp_devid, exp_tid)
        except ModbusIOException:
            dropped()
            return len(data), None

    framer.handleFrame = handle  # type: ignore[method-assign]


def _text(exc: ModbusException) -> str:
    """pymodbus prefixes its messages with the class name; keep the words."""
    return str(getattr(exc, "string", "") or exc)
