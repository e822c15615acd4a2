"""Run a simulator's command line as a user would: start it, read its one ready line, signal it, check the exit.

Only the process a test started is ever signalled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from gateway.errors import SimulatorError

REPO = Path(__file__).resolve().parents[1]


async def start_cli(
    module: str, *args: str, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """``python -m MODULE ARGS`` from the project root; the process and its ready line (15 s at most)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    return proc, line.decode().strip()


async def stop_cli(proc: asyncio.subprocess.Process, signum: int = signal.SIGTERM) -> tuple[int, bytes]:
    """Signal the simulator, wait for it; its exit code and stderr. The ready line must be all it printed."""
    if proc.returncode is None:
        os.kill(proc.pid, signum)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert stdout == b"", "the endpoint line is the only stdout output"
    assert proc.returncode is not None
    return proc.returncode, stderr


def help_text(main: Callable[[list[str] | None], int], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``--help`` prints; it must exit 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


async def assert_taken_port_refused(make_sim: Callable[[int], AbstractAsyncContextManager[object]]) -> None:
    """A simulator asked for a port another socket holds fails with a SimulatorError naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SimulatorError, match=f"127.0.0.1:{port}"):
            async with make_sim(port):
                pass
