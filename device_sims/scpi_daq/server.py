"""The simulated DAQ's wire: SCPI lines over a TCP socket (raw SOCKET, as port 5025) or over a pty.

Both ends take lines ending in LF (a CR before it is ignored) and answer with lines ending in LF. A
pty stands for a serial instrument: the client opens ``serial_path`` (``ASRL<serial_path>::INSTR``);
the simulator keeps both ends open so a client may close and reopen the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable

import structlog

from gateway.errors import SimulatorError

log = structlog.get_logger(__name__)

#: Answers one line; None sends nothing.
Handler = Callable[[str], str | None]
MAX_LINE = 4096


class TcpLink:
    """An asyncio TCP server; every connection talks to the same instrument."""

    def __init__(self, handle: Handler, host: str, port: int) -> None:
        self.handle, self.host, self.port = handle, host, port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_LINE)
        except OSError as exc:
            raise SimulatorError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]

    def drop(self) -> None:
        """Stop listening and cut every connection (a pulled cable, a powered-off instrument)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        self.drop()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    await reader.read(MAX_LINE)  # a line too long is dropped, as an input buffer overflows
                    continue
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                reply = self.handle(line.decode("latin-1").rstrip("\r\n"))
                if reply is not None:
                    writer.write(reply.encode("latin-1") + b"\n")
                    await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.transport.abort()


class PtyLink:
    """A pseudo-terminal: the simulator reads the master side, the client opens the slave path."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self._master: int | None = None
        self._slave: int | None = None
        self._buffer = b""
        self.serial_path: str | None = None

    async def start(self) -> None:
        try:
            master, slave = os.openpty()
        except OSError as exc:
            raise SimulatorError(f"cannot open a pty: {exc}") from exc
        tty.setraw(slave)  # no echo, no line editing: bytes pass as they are
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.serial_path = os.ttyname(slave)
        asyncio.get_running_loop().add_reader(master, self._readable)

    async def stop(self) -> None:
        master, slave, self._master, self._slave = self._master, self._slave, None, None
        if master is not None:
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)

    def _readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: no process has the slave open; the simulator keeps it open, so rare
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            reply = self.handle(line.decode("latin-1").rstrip("\r"))
            if reply is not None:
                with contextlib.suppress(BlockingIOError):
                    os.write(self._master, reply.encode("latin-1") + b"\n")
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
