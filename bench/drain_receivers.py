"""The receivers of the drain benchmark, each in a process of its own so the bench's CPU figures are the
gateway's: the MES stand-in (``cgt-gateway sim mes``) and the MQTT subscriber (bench/drain_subscriber.py).
The process helpers (CPU seconds, stopping) are bench/procstat.py's, named here too for bench/drain.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.procstat import process_cpu_s, stop_process

__all__ = ["Subscriber", "mes_state", "process_cpu_s", "start_mes", "stop_process"]

HERE = Path(__file__).resolve().parent


def start_mes() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "device_sims.mes.cli", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        stop_process(proc)
        raise SystemExit("the MES stand-in did not start; try `cgt-gateway sim mes --json`")
    return proc, json.loads(line)


async def mes_state(ready: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{ready['port']}/_state") as r:
        return dict(await r.json())


class Subscriber:
    """The MQTT consumer process (bench/drain_subscriber.py), asked for its counts over stdin."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "drain_subscriber.py"), "--port", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        if not self._line():
            self.stop()
            raise SystemExit("the MQTT subscriber did not start: run bench/drain_subscriber.py --port N to see why")

    def _line(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._line()
        if answer is None:
            raise SystemExit("the MQTT subscriber exited")
        return answer

    async def wait_for(self, n: int, timeout_s: float) -> dict[str, Any]:
        """Poll until the subscriber has ``n`` distinct records or stops making progress for ``timeout_s``."""
        last, deadline = -1, time.monotonic() + timeout_s
        while True:
            answer = await asyncio.to_thread(self.ask, "count")
            if answer["distinct"] >= n:
                return answer
            if answer["distinct"] != last:
                last, deadline = answer["distinct"], time.monotonic() + timeout_s
            elif time.monotonic() > deadline:
                return answer
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # the subscriber exits at end of input
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        stop_process(self.proc)
