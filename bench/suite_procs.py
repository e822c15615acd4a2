"""The processes of the suite and soak benches: simulator groups (bench/suite_sims.py) and the gateway itself
(``python -m gateway.cli run``), each started here and stopped by its own PID."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procstat import Metrics, scrape, stop_process
from bench.suite_site import write_group

HERE = Path(__file__).resolve().parent


@dataclass
class SimGroup:
    name: str
    devices: int
    proc: subprocess.Popen[str]
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)


def start_groups(workdir: Path, groups: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[SimGroup]:
    """One simulator process per group, all starting at once; stops them all if one fails."""
    started: list[SimGroup] = []
    try:
        for name, entries in groups.items():
            path = write_group(workdir, name, entries)
            log = (workdir / f"sims-{name}.log").open("w")
            proc = subprocess.Popen([sys.executable, str(HERE / "suite_sims.py"), str(path)],
                                    stdout=subprocess.PIPE, stderr=log, text=True)
            log.close()
            started.append(SimGroup(name, len(entries), proc))
        for group in started:
            assert group.proc.stdout is not None
            line = group.proc.stdout.readline()
            if not line:
                raise SystemExit(f"the {group.name} simulators did not start: "
                                 f"{_tail(workdir / f'sims-{group.name}.log')}")
            group.endpoints = json.loads(line)
    except BaseException:
        stop_groups(started)
        raise
    return started


def stop_groups(groups: Sequence[SimGroup]) -> None:
    for group in reversed(groups):
        stop_process(group.proc)


def tear_down(gateway: subprocess.Popen[str] | None, groups: Sequence[SimGroup], workdir: Path, keep: bool) -> None:
    """Stop the gateway and the simulator processes, then remove the work folder unless asked to keep it."""
    if gateway is not None:
        stop_process(gateway)
    stop_groups(groups)
    if keep:
        print(f"work folder kept: {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def endpoints_of(groups: Sequence[SimGroup]) -> dict[str, dict[str, Any]]:
    return {name: ep for g in groups for name, ep in g.endpoints.items()}


def free_port() -> int:
    """A loopback port free now (the gateway binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(site: Path, workdir: Path, profile: Path | None = None) -> subprocess.Popen[str]:
    """The gateway in its own process, as a site runs it; its log (warnings and up) in the work folder.

    ``profile``: run it under cProfile and write the stats there when it stops (the CPU figures then
    include the profiler's overhead).
    """
    log = (workdir / "gateway.log").open("w")
    profiler = ["-m", "cProfile", "-o", str(profile.resolve())] if profile is not None else []
    proc = subprocess.Popen(
        [sys.executable, *profiler, "-m", "gateway.cli", "--log-level", "warning", "run", "-c", str(site)],
        stdout=subprocess.DEVNULL, stderr=log, text=True, cwd=workdir,
    )
    log.close()
    return proc


def wait_until_up(proc: subprocess.Popen[str], api_port: int, devices: int, workdir: Path,
                  timeout_s: float = 90.0) -> Metrics:
    """Poll /metrics until every device is up (or the time is out: the caller reports how many were)."""
    deadline = time.monotonic() + timeout_s
    last: Metrics | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with {proc.returncode}: {_tail(workdir / 'gateway.log')}")
        try:
            last = scrape(api_port)
        except OSError:
            last = None
        if last is not None and last.devices >= devices and last.devices_up == last.devices:
            return last
        time.sleep(0.5)
    if last is None:
        raise SystemExit(f"the gateway's API did not answer in {timeout_s:g} s: {_tail(workdir / 'gateway.log')}")
    print(f"warning: only {last.devices_up} of {devices} devices up after {timeout_s:g} s", file=sys.stderr)
    return last


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no log)"
