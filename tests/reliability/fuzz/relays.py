"""Relays that corrupt what a device sends, on the real transport, for the end-to-end fuzz tests.

Each relay sits between a simulator and the gateway, passes the gateway's bytes to the device as they
are, and cuts the device's bytes into protocol units (a frame, a line, a Modbus answer): each unit is
kept as sent (``sent``) and then, by the relay's ``corrupt``, forwarded as it is, changed, or not at all.
So a test can say of every record: it equals something the simulator sent.

* :class:`PtyRelay`: a serial line (the simulator's pty on one side, a pty of its own, at a stable
  symlink, for the gateway on the other); units cut by a ``cut`` function.
* :class:`TcpRelay`: a TCP port in front of the simulator's (``tests/relay.py``'s base, like
  ``lagrelay.py``), one upstream connection per gateway connection; the subclass cuts the units and
  may watch the requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import tty
from collections.abc import Callable
from pathlib import Path

from tests.relay import Relay

#: Cuts complete units off the front of a buffer (removing them); an incomplete tail stays.
Cutter = Callable[[bytearray], list[bytes]]
#: What to forward for one unit the device sent (b"" forwards nothing).
Corrupter = Callable[[bytes], bytes]


class PtyRelay:
    """``async with PtyRelay(sim.serial_path, cut, corrupt) as relay:`` then point the gateway at ``relay.path``.

    The relay holds both sides open all the time, so the gateway may close and reopen its end (a
    reconnect) without the simulator noticing, as with a real cable and device.
    """

    def __init__(self, device_path: str, cut: Cutter, corrupt: Corrupter) -> None:
        self.device_path = device_path
        self.cut = cut
        self.corrupt = corrupt
        self.path = ""
        self.sent: list[bytes] = []
        self._workdir: Path | None = None
        self._device: int | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._from_device = bytearray()
        self._queues: dict[int, asyncio.Queue[bytes]] = {}
        self._writers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> PtyRelay:
        loop = asyncio.get_running_loop()
        self._device = os.open(self.device_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._device)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._workdir = Path(tempfile.mkdtemp(prefix="fuzz-relay-"))
        self.path = str(self._workdir / "tty")
        os.symlink(os.ttyname(self._slave), self.path)
        for fd in (self._device, self._master):
            self._queues[fd] = asyncio.Queue()
            self._writers.append(asyncio.create_task(self._write(fd, self._queues[fd])))
        loop.add_reader(self._device, self._on_device)
        loop.add_reader(self._master, self._on_gateway)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for task in self._writers:
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        for fd in (self._device, self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(fd)
                os.close(fd)
        self._device = self._master = self._slave = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _read(self, fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except (BlockingIOError, OSError):  # EIO while the other end has no one on it
            return b""

    def _on_device(self) -> None:
        assert self._device is not None and self._master is not None
        self._from_device += self._read(self._device)
        for unit in self.cut(self._from_device):
            self.sent.append(unit)
            out = self.corrupt(unit)
            if out:
                self._queues[self._master].put_nowait(out)

    def _on_gateway(self) -> None:
        assert self._device is not None and self._master is not None
        data = self._read(self._master)
        if data:
            self._queues[self._device].put_nowait(data)

    async def _write(self, fd: int, queue: asyncio.Queue[bytes]) -> None:
        while True:
            view = memoryview(await queue.get())
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    await asyncio.sleep(0.002)
                except OSError:
                    break  # nobody on the other end right now: dropped, as on a wire


class TcpRelay(Relay):
    """A TCP relay whose subclass cuts the device's answers into units and corrupts them.

    ``async with Relay(("127.0.0.1", sim.port)) as relay:`` then point the gateway at ``relay.port``.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.sent: list[bytes] = []

    # -- what a subclass says ----------------------------------------------------------------------
    def cut(self, buffer: bytearray) -> list[bytes]:
        """Complete units off the front of the device's bytes."""
        raise NotImplementedError

    def corrupt(self, unit: bytes) -> bytes:
        """What to forward for one unit (b"": nothing)."""
        return unit

    def request(self, data: bytes) -> None:
        """The gateway's bytes on their way to the device (to know what an answer answers)."""

    # -- the relay -----------------------------------------------------------------------------------
    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, towards_server: bool) -> None:
        """Copy one direction until either side goes; then close both."""
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                if towards_server:
                    self.request(data)
                    writer.write(data)
                else:
                    buffer += data
                    for unit in self.cut(buffer):
                        self.sent.append(unit)
                        writer.write(self.corrupt(unit))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
