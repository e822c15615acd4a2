"""A TCP relay that makes a device answer slowly: every byte from the device is held ``delay_s`` before
it goes on to the gateway (the requests pass at once), in order, on a real socket.

Changing ``delay_s`` takes effect for bytes the device sends from then on. The simulators have no
latency fault of their own; this puts one on the wire, where a slow device or a congested serial
server really adds it.
"""

from __future__ import annotations

import asyncio
import contextlib


class LagRelay:
    """``async with LagRelay(("127.0.0.1", sim.port), delay_s=0.1) as relay:`` then point the gateway at
    ``relay.port``."""

    def __init__(self, target: tuple[str, int], delay_s: float = 0.0) -> None:
        self.target = target
        self.delay_s = delay_s
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LagRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
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
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, lag=False)),
            asyncio.create_task(self._pump(up_reader, writer, lag=True)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            self._writers -= {writer, up_writer}

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, lag: bool) -> None:
        """Copy one direction; the device's bytes each leave ``delay_s`` after they arrived, in order,
        and an end of stream follows the bytes held before it."""
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, data = await held.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(release())
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                held.put_nowait((loop.time() + (self.delay_s if lag else 0.0), data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender
            writer.transport.abort()
