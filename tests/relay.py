"""A TCP relay on loopback between a real server (a simulator, the broker) and the gateway, for the tests
that put a fault on the wire: one upstream connection per accepted connection, a pump each way.

The base copies bytes as they are; subclasses change one direction by overriding :meth:`Relay._pump`
(hold them: ``tests/reliability/lagrelay.py``; corrupt them: ``tests/reliability/fuzz/relays.py``) or
cut the connections (``tests/sinks/mqtt/support.py``).
"""

from __future__ import annotations

import asyncio
from typing import Self


class Relay:
    """``async with Relay(("127.0.0.1", server_port)) as relay:`` then point the client at ``relay.port``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def connected(self) -> None:
        """A new connection reached the server: a subclass may forget what it kept about the last one."""

    def abort_connections(self) -> None:
        """Abort every relayed connection at once: both sides see a reset, as on a network loss."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self.abort_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connected()
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, towards_server=True)),
            asyncio.create_task(self._pump(up_reader, writer, towards_server=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            self._writers -= {writer, up_writer}

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, towards_server: bool) -> None:
        """Copy one direction until either side goes; then abort the other side too."""
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
