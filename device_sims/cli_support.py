"""What every simulator's command line does once its options are parsed: start, say where, serve.

A simulator run by hand prints one line (its endpoint, or JSON for scripts) on stdout, logs to stderr,
serves until SIGINT or SIGTERM and exits 0; a simulator that cannot start exits 2 with one line.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import structlog

from gateway.errors import SimulatorError

Sim = TypeVar("Sim", bound=AbstractAsyncContextManager[object])


def run_until_signalled(make_sim: Callable[[], Sim], ready_line: Callable[[Sim], str]) -> int:
    """Run the simulator ``make_sim`` builds until a signal; return the process exit code."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        asyncio.run(_serve(make_sim, ready_line))
    except (SimulatorError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


async def _serve(make_sim: Callable[[], Sim], ready_line: Callable[[Sim], str]) -> None:
    sim = make_sim()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with sim:
            sys.stdout.write(ready_line(sim) + "\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
