"""A TCP relay that makes a device answer slowly: every byte from the device is held ``delay_s`` before
it goes on to the gateway (the requests pass at once), in order, on a real socket.

Changing ``delay_s`` takes effect for bytes the device sends from then on. The simulators have no
latency fault of their own; this puts one on the wire, where a slow device or a congested serial
server really adds it.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.relay import Relay


class LagRelay(Relay):
    """``async with LagRelay(("127.0.0.1", sim.port), delay_s=0.1) as relay:`` then point the gateway at
    ``relay.port``."""

    def __init__(self, target: tuple[str, int], delay_s: float = 0.0) -> None:
        super().__init__(target)
        self.delay_s = delay_s

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, towards_server: bool) -> None:
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
                held.put_nowait((loop.time() + (0.0 if towards_server else self.delay_s), data))
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
