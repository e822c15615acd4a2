"""Peer comparison: CPU per Modbus read of Node-RED + node-red-contrib-modbus and of cgt-gateway, in turns.

    python bench/peer.py --quick              # about a minute; 90 s when it installs Node-RED first
    python bench/peer.py --json               # 20 s windows, every measurement twice: about 4 minutes

Both peers read the same Q holding registers from address 0 of one plain pymodbus server (its own
process) at the same configured interval (5 ms by default, a pace Node-RED holds on 2 cores, so a
peer that keeps up does the same work per second and idle costs weigh alike; a peer that falls behind
shows it in reads/s), one after the other, never at once:

* Node-RED (headless, bench/nodered/): modbus-client → modbus-read → function (adds ts) → file (one
  unsynced JSON line appended per read);
* cgt-gateway (`cgt-gateway run` as a process): a generated register map turns every register into a
  reading, which is normalised, hashed into the chain and committed durably (SQLite, synchronous=FULL).

Each process's CPU (utime + stime from /proc/<pid>/stat) is taken over the same steady-state window after
its start-up; reads are Node-RED's JSONL lines and the gateway's journalled readings / Q. DESIGN §7
"Peer": the gateway's CPU per read ≤ 0.5× Node-RED's at Q = 10 and ≤ 1× at Q = 100.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the helpers beside this script
from bench.procstat import stop_process  # noqa: E402
from gateway import __version__  # noqa: E402
from gateway.errors import JournalError  # noqa: E402
from gateway.journal import JournalReader  # noqa: E402

NODERED = REPO / "bench" / "nodered"
NODE_MODULES = NODERED / "node_modules"
#: DESIGN §7: gateway CPU per read / Node-RED CPU per read must stay at or under these.
BARS = {10: 0.5, 100: 1.0}
MIN_NODE_MAJOR = 18  # node-red 4.1 needs Node >= 18.5; 5.x needs 22, hence the pinned 4.1.15
PARAMETER_PREFIX = "channel_"


class Window(NamedTuple):
    """CPU (all of it, and the kernel's part) a process spent over a wall-clock window."""

    cpu_s: float
    sys_s: float
    wall_s: float


class BenchError(Exception):
    """A set-up problem, said in one line with what to do about it."""


@dataclass
class Measure:
    """One peer's steady-state window at one register count."""

    run: int
    peer: str
    quantity: int
    interval_ms: float
    reads: float
    readings: int
    cpu_s: float
    sys_s: float
    wall_s: float

    @property
    def reads_per_s(self) -> float:
        return self.reads / self.wall_s

    @property
    def cpu_us_per_read(self) -> float:
        return 1e6 * self.cpu_s / max(self.reads, 1)

    @property
    def cpu_us_per_reading(self) -> float:
        return 1e6 * self.cpu_s / max(self.readings, 1)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "reads_per_s": self.reads_per_s, "cpu_percent": 100 * self.cpu_s / self.wall_s,
                "cpu_us_per_read": self.cpu_us_per_read, "cpu_us_per_reading": self.cpu_us_per_reading}


# -- Node-RED installation ---------------------------------------------------------------------------------------
def node_red_script() -> Path:
    """Node-RED's entry script, installing the pinned packages into bench/nodered/node_modules on first use.

    The install is keyed by package.json's hash (as the Makefile keys the venv), so a changed pin reinstalls.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise BenchError("node and npm are needed for the Node-RED peer: install them (`apt-get install nodejs npm`; "
                         f"Node {MIN_NODE_MAJOR}-22 works) and run again")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major = int(version.lstrip("v").split(".")[0]) if version[1:2].isdigit() else 0
    if major < MIN_NODE_MAJOR:
        raise BenchError(f"node {version or '(unknown version)'} is too old for Node-RED 4.1: install Node "
                         f"{MIN_NODE_MAJOR}-22 and run again")
    digest = hashlib.sha256((NODERED / "package.json").read_bytes()).hexdigest()[:12]
    stamp = NODE_MODULES / f".cgt-installed-{digest}"
    script = NODE_MODULES / "node-red" / "red.js"
    if stamp.exists() and script.exists():
        return script
    print(f"installing {_pins()} into {_shown(NODE_MODULES)} (first run: about a minute) ...",
          file=sys.stderr, flush=True)
    t0 = time.monotonic()
    # npm's own progress goes to stderr; its summary too, so --json output stays clean on stdout.
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock"], cwd=NODERED,
                          stdout=sys.stderr, check=False)
    if done.returncode != 0 or not script.exists():
        raise BenchError(f"npm install in {_shown(NODERED)} failed (exit {done.returncode}, npm's lines above): the "
                         "npm registry must be reachable; retry, or run `npm install --no-package-lock` there by hand")
    for old in NODE_MODULES.glob(".cgt-installed-*"):
        old.unlink()
    stamp.touch()
    print(f"installed in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return script


def _shown(path: Path) -> Path:
    """A path inside the checkout as the user would type it from its root."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _pins() -> str:
    deps = json.loads((NODERED / "package.json").read_text())["dependencies"]
    return " + ".join(f"{name} {version}" for name, version in deps.items())


# -- processes -------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime + stime, stime) of a live process, all its threads, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


def start_server(registers: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "modbus_server.py"), "--registers", str(registers)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise BenchError("the Modbus server did not start: run `python bench/modbus_server.py` to see why")
    return proc, int(json.loads(line)["port"])


def _tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return " | ".join(text[-lines:]) or "(nothing logged)"


def steady_window(proc: subprocess.Popen[str], name: str, log: Path, count: Callable[[], int],
                  warmup_s: float, seconds: float, start_timeout_s: float = 60.0) -> tuple[int, int, Window]:
    """Wait for the first output, let start-up settle, then (count0, count1, cpu window) over ``seconds``."""
    deadline = time.monotonic() + start_timeout_s
    while count() == 0:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode} before reading anything: {_tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{name} read nothing in {start_timeout_s:.0f} s: {_tail(log)}")
        time.sleep(0.1)
    time.sleep(warmup_s)
    c0, (cpu0, sys0), t0 = count(), cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, (cpu1, sys1), t1 = count(), cpu_seconds(proc.pid), time.monotonic()
    if proc.poll() is not None:
        raise BenchError(f"{name} exited with {proc.returncode} during the measurement: {_tail(log)}")
    return c0, c1, Window(cpu1 - cpu0, sys1 - sys0, t1 - t0)


# -- the two peers -----------------------------------------------------------------------------------------------
def measure_nodered(script: Path, port: int, quantity: int, interval_ms: float, work: Path, run: int,
                    warmup_s: float, seconds: float) -> Measure:
    work.mkdir()
    output = work / "readings.jsonl"
    output.touch()
    values = {"port": str(port), "quantity": str(quantity), "rate_ms": f"{interval_ms:g}",
              "output": json.dumps(str(output))[1:-1]}
    flow = (NODERED / "flow.template.json").read_text()
    for key, value in values.items():
        flow = flow.replace("{{" + key + "}}", value)
    json.loads(flow)  # a broken template fails here, not as a silent Node-RED flow error
    (work / "flows.json").write_text(flow)
    log = work / "node-red.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen([str(shutil.which("node")), str(script), "-u", str(work), "-s",
                                 str(NODERED / "settings.js"), str(work / "flows.json")],
                                cwd=work, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    try:
        c0, c1, w = steady_window(proc, "Node-RED", log, lambda: _lines(output), warmup_s, seconds)
    finally:
        stop_process(proc, timeout_s=15)
    return Measure(run, "Node-RED", quantity, interval_ms, c1 - c0, (c1 - c0) * quantity, w.cpu_s, w.sys_s, w.wall_s)


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return f.read().count(b"\n")


def write_site(work: Path, port: int, quantity: int, interval_ms: float, commit_window_ms: float = 0) -> Path:
    """A site with one device whose generated map makes every register a reading (device knowledge as data)."""
    points = "".join(
        f"  r{i:03d}: {{table: holding, address: {i}, type: uint16, parameter: {PARAMETER_PREFIX}{i:03d}, unit: Cel,"
        f" scale: 0.1, valid_min: 0, valid_max: 7000}}\n"
        for i in range(quantity)
    )
    (work / "peer-bench.yaml").write_text(
        f"name: peer-bench\ndescription: {quantity} holding registers from 0, each a temperature in 0.1 Cel\n"
        f"points:\n{points}acquisition: {{mode: live, sample_key: []}}  # every poll is a sample\n"
    )
    site = work / "site.yaml"
    site.write_text(
        "gateway: {id: gw-peer}\n"
        f"journal: {{path: journal.sqlite, synchronous: full, commit_window_ms: {commit_window_ms:g}}}\n"
        "equipment:\n"
        f"  - {{id: DAQ-1, class: temperature_daq, kind: modbus, transport: tcp, host: 127.0.0.1, port: {port},\n"
        f"     device_id: 1, register_map: peer-bench.yaml, poll_interval_s: {interval_ms / 1000:g}}}\n"
    )
    return site


def measure_gateway(port: int, quantity: int, interval_ms: float, work: Path, run: int,
                    warmup_s: float, seconds: float, commit_window_ms: float = 0) -> Measure:
    work.mkdir()
    site = write_site(work, port, quantity, interval_ms, commit_window_ms)
    journal = work / "journal.sqlite"
    log = work / "gateway.log"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with log.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--log-level", "warning", "run", "-c", str(site)],
                                cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, text=True, env=env)

    def head() -> int:
        try:
            with JournalReader(journal) as reader:
                return reader.last_seq()
        except JournalError:  # not created yet, or its schema not yet written
            return 0

    try:
        s0, s1, w = steady_window(proc, "the gateway", log, head, warmup_s, seconds)
    finally:
        stop_process(proc, timeout_s=15)
    with JournalReader(journal) as reader:  # only Good readings count, not events or Bad-quality gaps
        stored = (json.loads(payload) for _, payload, _, _ in reader.rows(since_seq=s0, limit=s1 - s0, raw=False))
        readings = sum(
            1 for r in stored if str(r.get("parameter")).startswith(PARAMETER_PREFIX) and r.get("quality") == "Good"
        )
    return Measure(run, "gateway", quantity, interval_ms, readings / quantity, readings, w.cpu_s, w.sys_s, w.wall_s)


# -- report ------------------------------------------------------------------------------------------------------
def ratios(measures: Sequence[Measure]) -> list[dict[str, object]]:
    out = []
    for m in measures:
        if m.peer != "gateway":
            continue
        peer = next(n for n in measures if n.peer == "Node-RED" and n.run == m.run and n.quantity == m.quantity)
        ratio = m.cpu_us_per_read / peer.cpu_us_per_read
        bar = BARS.get(m.quantity)
        out.append({"run": m.run, "quantity": m.quantity, "ratio": ratio, "bar": bar,
                    "within": None if bar is None else ratio <= bar})
    return out


def print_table(measures: Sequence[Measure], summary: Sequence[dict[str, object]]) -> None:
    print(f"\n{'run':>3} {'Q':>4}  {'peer':<9} {'reads/s':>8} {'CPU %':>6} {'(sys)':>6} {'CPU µs/read':>12} "
          f"{'CPU µs/reading':>15}")
    for m in measures:
        print(f"{m.run:>3} {m.quantity:>4}  {m.peer:<9} {m.reads_per_s:>8.1f} {100 * m.cpu_s / m.wall_s:>6.1f} "
              f"{100 * m.sys_s / m.wall_s:>6.1f} {m.cpu_us_per_read:>12.0f} {m.cpu_us_per_reading:>15.1f}")
    print("\ngateway / Node-RED, CPU per read (DESIGN §7 bars: ≤ 0.5 at Q = 10, ≤ 1.0 at Q = 100)")
    for q in sorted({int(str(r["quantity"])) for r in summary}):
        rows = [r for r in summary if r["quantity"] == q]
        figures = "  ".join(f"run {r['run']}: {r['ratio']:.2f}" for r in rows)
        bar = rows[0]["bar"]
        verdict = "" if bar is None else (
            "  within the bar" if all(r["within"] for r in rows) else "  ABOVE the bar")
        print(f"  Q = {q:<4} {figures}{'' if bar is None else f'   bar ≤ {bar}'}{verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    head, rest = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quantities", type=int, nargs="+", default=[10, 100], help="registers per read (1-125)")
    p.add_argument("--interval-ms", type=float, default=5.0, help="poll interval of both peers (Node-RED's rate)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each measured window")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds after the first read before measuring")
    p.add_argument("--repeat", type=int, default=2, help="runs of every peer and Q, in turns")
    p.add_argument("--commit-window-ms", type=float, default=0.0,
                   help="the gateway's journal.commit_window_ms (default 0: a commit per read)")
    p.add_argument("--quick", action="store_true", help="one run, 8 s windows (about a minute)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (flows, site, map, logs, journals)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.repeat = 8.0, 2.0, 1
    if not all(1 <= q <= 125 for q in args.quantities):
        p.error("--quantities: a Modbus read takes 1 to 125 registers")
    work = Path(tempfile.mkdtemp(prefix="cgt-peer-"))
    server: subprocess.Popen[str] | None = None
    measures: list[Measure] = []
    try:
        script = node_red_script()
        server, port = start_server(max(args.quantities))
        print(f"{_pins()} vs cgt-gateway {__version__}: interval {args.interval_ms:g} ms, {args.seconds:g} s "
              f"windows, {args.repeat} run(s), {os.cpu_count()} cores, gateway commit window "
              f"{args.commit_window_ms:g} ms", file=sys.stderr)
        for run in range(1, args.repeat + 1):
            for q in args.quantities:
                print(f"run {run}, Q = {q}: Node-RED ...", file=sys.stderr, flush=True)
                measures.append(measure_nodered(script, port, q, args.interval_ms, work / f"nodered-{run}-{q}", run,
                                                args.warmup, args.seconds))
                print(f"run {run}, Q = {q}: gateway ...", file=sys.stderr, flush=True)
                measures.append(measure_gateway(port, q, args.interval_ms, work / f"gateway-{run}-{q}", run,
                                                args.warmup, args.seconds, args.commit_window_ms))
    except BenchError as exc:
        print(f"bench/peer.py: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            stop_process(server, timeout_s=15)
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary = ratios(measures)
    if args.json:
        names = ("quantities", "interval_ms", "seconds", "warmup", "repeat", "commit_window_ms")
        config = {k: getattr(args, k) for k in names}
        print(json.dumps({"config": {**config, "peer": _pins(), "gateway": __version__, "cores": os.cpu_count()},
                          "measures": [m.as_dict() for m in measures], "ratios": summary}, indent=2))
    else:
        print_table(measures, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
