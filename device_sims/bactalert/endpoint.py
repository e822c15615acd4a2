"""The simulator's end of a serial line: a pty whose client side is reached through a stable symlink.

``os.openpty`` gives a new ``/dev/pts/N`` each time; the link path stays the same, so a line that drops
(the master closed: the client reads EIO) and comes back (a new pty, the link re-pointed atomically) is
reopened by the gateway at the path it was configured with, as after a real cable is plugged back.
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

from gateway.errors import SimulatorError


class PtyEndpoint:
    """Bytes in (``read``), bytes out (``write``), ``hangup()`` and ``reopen()``; owned by one simulator."""

    def __init__(self, link_path: str | None = None) -> None:
        self._requested = link_path
        self._workdir: Path | None = None
        self.path = ""
        self._master: int | None = None
        self._slave: int | None = None
        self._buffer = bytearray()
        self._arrived = asyncio.Event()
        self.up = False
        #: Called whenever bytes arrive or the line goes down, so an owner waiting on other things wakes up.
        self.on_data: Callable[[], None] | None = None

    def open(self) -> None:
        if self._requested is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="bactalert-"))
            self.path = str(self._workdir / "tty")
        else:
            self.path = str(Path(self._requested).absolute())
            if Path(self.path).exists() or Path(self.path).is_symlink():
                raise SimulatorError(f"cannot create the serial link {self.path}: the path already exists")
        self.reopen()

    def reopen(self) -> None:
        """A fresh pty behind the same link path."""
        self._close_fds()
        master, slave = os.openpty()
        tty.setraw(slave)  # raw, no echo: bytes pass as they are
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = f"{self.path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)
        self._buffer.clear()
        asyncio.get_running_loop().add_reader(master, self._on_readable)
        self.up = True

    def hangup(self) -> None:
        """The cable is pulled: the client's next read fails."""
        self._close_fds()
        self.up = False
        self._arrived.set()
        if self.on_data is not None:
            self.on_data()

    def close(self) -> None:
        self._close_fds()
        self.up = False
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        elif self.path and Path(self.path).is_symlink():
            Path(self.path).unlink()

    def _close_fds(self) -> None:
        master, slave, self._master, self._slave = self._master, self._slave, None, None
        if master is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)

    def _on_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: no client has the line open right now
            return
        self._buffer += data
        self._arrived.set()
        if self.on_data is not None:
            self.on_data()

    async def read_byte(self, timeout_s: float | None) -> int | None:
        """The next byte from the client, or None when ``timeout_s`` passes first (or the line is down)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not self._buffer:
            if not self.up:
                return None
            self._arrived.clear()
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                return None
        byte = self._buffer[0]
        del self._buffer[0]
        return byte

    def pending(self) -> bool:
        return bool(self._buffer)

    def drain_input(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def write(self, data: bytes) -> None:
        """Write everything (the pty may take it in pieces); dropped silently when the line is down."""
        view = memoryview(data)
        while view and self._master is not None:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                await asyncio.sleep(0.005)
                continue
            except OSError as exc:
                raise SimulatorError(f"cannot write to the pty: {exc}") from exc
            view = view[n:]

    async def wait_input(self) -> None:
        """Until a byte arrives (or the line goes down)."""
        while not self._buffer and self.up:
            self._arrived.clear()
            await self._arrived.wait()
