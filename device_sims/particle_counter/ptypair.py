"""A pair of linked pseudo-terminals made by socat: a serial line without hardware.

RTU needs two device paths (one end for the simulated counter, one for the client), which `os.openpty`
alone does not give a pyserial client on both sides; `socat pty,... pty,...` does. The module is not
called `pty` so that it never shadows the standard library module of that name.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

import structlog

from gateway.errors import SimulatorError

log = structlog.get_logger(__name__)

SOCAT_MISSING = "socat is not installed: run `make test` (it installs it) or `apt-get install socat`"
POLL_INTERVAL_S = 0.01


def _links_exist(*paths: str) -> bool:
    return all(Path(p).exists() for p in paths)


class SocatPtyPair:
    """Two ptys joined by a socat process this object starts, owns and kills (by PID) on close.

    `device_path` is the end the simulator opens; `client_path` is the one given to the client. With
    `client_path=None` both links live in a private temporary directory removed on close; with a path,
    the device end is created next to it as `<client_path>.sim`.
    """

    def __init__(self, client_path: str | None = None) -> None:
        self._requested_path = client_path
        self._workdir: Path | None = None
        self.client_path = ""
        self.device_path = ""
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """PID of the socat process while it runs."""
        return self._process.pid if self._process else None

    async def open(self, timeout_s: float = 5.0) -> None:
        """Start socat and wait (bounded) until both links exist; SimulatorError if it cannot."""
        socat = shutil.which("socat")
        if socat is None:
            raise SimulatorError(SOCAT_MISSING)
        log_path = self._prepare_paths()
        args = ["-d", "-d", f"pty,raw,echo=0,link={self.device_path}", f"pty,raw,echo=0,link={self.client_path}"]
        with log_path.open("wb") as stderr:
            self._process = await asyncio.create_subprocess_exec(
                socat, *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not _links_exist(self.device_path, self.client_path):
            if self._process.returncode is not None:
                detail = log_path.read_text(errors="replace").strip()
                await self.close()
                raise SimulatorError(f"socat exited before creating the pty pair: {detail}")
            if loop.time() > deadline:
                await self.close()
                raise SimulatorError(f"socat did not create {self.client_path} within {timeout_s} s")
            await asyncio.sleep(POLL_INTERVAL_S)
        log.debug("pty pair ready", device_path=self.device_path, client_path=self.client_path, pid=self.pid)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Terminate socat (SIGTERM, then SIGKILL after `timeout_s`), reap it and remove the links."""
        process, self._process = self._process, None
        if process is not None:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout_s)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            self._remove_links()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _prepare_paths(self) -> Path:
        """Choose the link paths; refuse to overwrite anything that already exists."""
        self._workdir = Path(tempfile.mkdtemp(prefix="pcsim-"))
        if self._requested_path is None:
            self.client_path = str(self._workdir / "ttyB")
            self.device_path = str(self._workdir / "ttyA")
        else:
            self.client_path = str(Path(self._requested_path).absolute())
            self.device_path = self.client_path + ".sim"
        for path in (self.client_path, self.device_path):
            if Path(path).is_symlink() or Path(path).exists():
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None
                raise SimulatorError(f"cannot create pty link {path}: the path already exists")
        return self._workdir / "socat.log"

    def _remove_links(self) -> None:
        """socat removes its links on a clean exit; after a SIGKILL it cannot, so do it here."""
        for path in (self.client_path, self.device_path):
            if Path(path).is_symlink():
                Path(path).unlink()
