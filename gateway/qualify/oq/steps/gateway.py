"""Gateway steps: start it (in-process or as a ``cgt-gateway run`` process), stop it cleanly, kill it, edit
its journal behind its back; and what its run cost, measured at the stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import load_site
from gateway.errors import GatewayError, gateway_error_in
from gateway.plugins import adapter_plugins
from gateway.qualify.oq.steps.errors import StepFailed, StepRefused, first_line
from gateway.runtime import RunningGateway, run_gateway


@dataclass(frozen=True)
class Usage:
    """What the gateway's last run cost: CPU seconds over wall seconds, and its peak resident memory."""

    cpu_s: float
    wall_s: float
    peak_rss_mb: float
    how: str


def _proc_figures(pid: int | str) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in MB of a process, from the operating system's own figures."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next((line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")), "0")
    return cpu_s, int(hwm) / 1024


class GatewayControl:
    """The gateway of a :class:`~gateway.qualify.oq.steps.rig.Rig`, mixed into it: works on the rig's
    fields below and waits with its ``wait``."""

    mode: str
    work_dir: Path
    resolved: Path
    journal_path: Path
    exit_error: str | None
    usage: Usage | None
    _run_started: tuple[float, float]
    _running: RunningGateway | None
    _stop: asyncio.Event | None
    _task: asyncio.Task[Any] | None
    _proc: asyncio.subprocess.Process | None
    wait: Callable[..., Any]

    @property
    def gateway_running(self) -> bool:
        return self._task is not None or self._proc is not None

    async def start_gateway(self) -> None:
        """Start the gateway; StepRefused with its one line when it will not start."""
        if self.gateway_running:
            raise StepFailed("the gateway is already running")
        self.exit_error = None
        self._run_started = (time.monotonic(), self._own_cpu_s())
        if self.mode == "process":
            with (self.work_dir / "gateway-stderr.log").open("ab") as err:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.cli", "run", "-c", str(self.resolved),
                    stdout=subprocess.DEVNULL, stderr=err,
                )
            await self.wait(self.journal_path.exists, 20, "the gateway process to open its journal")
            return
        try:
            loaded = load_site(self.resolved, adapter_plugins())
        except GatewayError as exc:
            raise StepRefused(first_line(exc)) from None
        started: asyncio.Future[RunningGateway] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            run_gateway(loaded, stop=self._stop, on_started=started.set_result, drain_grace_s=10), name="oq-gateway"
        )
        done, _ = await asyncio.wait([started, self._task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if started not in done:
            await self.stop_gateway()
            if self.exit_error is not None:
                raise StepRefused(self.exit_error)
            raise StepFailed("the gateway did not start within 30 s")
        self._running = started.result()

    async def stop_gateway(self) -> None:
        """A clean stop: devices first, then the sinks drain, then the journal closes.

        A gateway that had already ended on an error is not an error of the stop: ``exit_error`` keeps it.
        """
        if self._task is not None:
            assert self._stop is not None
            self._measure(None)
            self._stop.set()
            task, self._task, self._running = self._task, None, None
            try:
                await task
            except Exception as exc:
                error = gateway_error_in(exc)
                if error is None:
                    raise
                self.exit_error = first_line(error)
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.returncode is None:
                with contextlib.suppress(OSError, ValueError, StopIteration):
                    self._measure(proc.pid)
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 40)
            if proc.returncode not in (0, -signal.SIGTERM):
                self.exit_error = f"exit status {proc.returncode}: {self._stderr_tail()}"

    @staticmethod
    def _own_cpu_s() -> float:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime

    def _measure(self, pid: int | None) -> None:
        """The run's cost just before the stop (the drain is not part of the load)."""
        started, cpu0 = self._run_started
        wall = time.monotonic() - started
        if pid is not None:
            cpu, peak = _proc_figures(pid)
            self.usage = Usage(cpu, wall, peak, "for the gateway process")
        else:
            _, peak = _proc_figures("self")
            self.usage = Usage(self._own_cpu_s() - cpu0, wall, peak,
                               "in-process (runner and simulators included: an upper bound)")

    def _stderr_tail(self) -> str:
        path = self.work_dir / "gateway-stderr.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return lines[-1] if lines else "(no output)"

    def _gateway_ended(self) -> bool:
        if self._task is not None:
            return self._task.done()
        if self._proc is not None:
            return self._proc.returncode is not None
        return True

    async def kill_gateway(self) -> None:
        if self._proc is None:
            raise StepFailed("kill_gateway: no gateway process is running")
        proc, self._proc = self._proc, None
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()

    async def tamper(self, sql: str) -> str:
        """Run ``sql`` against the journal once the gateway has stopped: a deliberate edit verify must see."""
        if self.gateway_running:
            await self.stop_gateway()
        with closing(sqlite3.connect(self.journal_path, isolation_level=None)) as db:
            changed = db.execute(sql).rowcount
        return f"journal edited directly ({changed} row(s) changed)"
