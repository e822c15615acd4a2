"""The freezer simulator's serial line: a pty behind a stable symlink, so a line drop and its repair look
like a USB-serial adapter unplugged and plugged back in (the client reopens the same path)."""

from __future__ import annotations

import contextlib
import os
import tty


class PtyLink:
    """A pty whose client end is reached through a symlink that survives re-creating the pty."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.master: int | None = None
        self._slave: int | None = None

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        tmp = f"{self.path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)
        self.master, self._slave = master, slave

    def close(self) -> None:
        master, slave, self.master, self._slave = self.master, self._slave, None, None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
