"""The serial line shared by the serial-protocol adapters: a device path or a ``socket://`` URL.

An RS-232 device on ``/dev/ttyUSB0`` (a pty in the tests) and one behind a serial-over-TCP device
server (``socket://10.0.3.40:4001``) look the same to a protocol: a byte stream with a reader and a
writer. Line settings come from the equipment's config. Library errors become the gateway's own:
a line that cannot be opened or that drops is a :class:`CommunicationError`, and the supervisor
reopens it with backoff.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import serial
import serial_asyncio
from pydantic import BaseModel, Field

from gateway.config import STRICT
from gateway.errors import CommunicationError

Parity = Literal["none", "even", "odd", "mark", "space"]
_PARITY = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD,
           "mark": serial.PARITY_MARK, "space": serial.PARITY_SPACE}


class SerialLineConfig(BaseModel):
    """How to reach a serial device: the fields an equipment entry of a serial protocol carries."""

    model_config = STRICT

    port: str = Field(
        description="device path (/dev/ttyUSB0, /dev/serial/by-id/...) or a serial-over-TCP URL socket://host:port",
        min_length=1,
    )
    baudrate: int = Field(default=9600, gt=0, description="bits per second (ignored for socket:// URLs)")
    bytesize: Literal[7, 8] = Field(default=8, description="data bits")
    parity: Parity = "none"
    stopbits: Literal[1, 2] = 1


class SerialLine:
    """An open serial line: ``async with SerialLine(config, label) as line: await line.read(...)``."""

    def __init__(self, config: SerialLineConfig, label: str = "") -> None:
        self.config = config
        self.label = label or config.port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        c = self.config
        try:
            self._reader, self._writer = await serial_asyncio.open_serial_connection(
                url=c.port, baudrate=c.baudrate, bytesize=c.bytesize, parity=_PARITY[c.parity], stopbits=c.stopbits
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise CommunicationError(f"{self.label}: cannot open serial line {c.port}: {exc}") from exc

    async def close(self) -> None:
        """Close the line. Idempotent, and safe after a failed open."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            await writer.wait_closed()
        except (serial.SerialException, OSError):
            pass  # the line was already gone; closing is all that was asked

    async def __aenter__(self) -> SerialLine:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Whatever bytes have arrived (waits for at least one); CommunicationError when the line drops."""
        reader = self._stream()[0]
        try:
            data = await reader.read(max_bytes)
        except (serial.SerialException, OSError) as exc:
            raise CommunicationError(f"{self.label}: serial line dropped: {exc}") from exc
        if not data:
            raise CommunicationError(f"{self.label}: serial line closed by the other end")
        return data

    async def write(self, data: bytes) -> None:
        writer = self._stream()[1]
        try:
            writer.write(data)
            await writer.drain()
        except (serial.SerialException, OSError) as exc:
            raise CommunicationError(f"{self.label}: serial line dropped while writing: {exc}") from exc

    def _stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            raise CommunicationError(f"{self.label}: serial line is not open")
        return self._reader, self._writer
