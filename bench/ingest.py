"""Ingest benchmark: readings/s normalised and durably journalled from N simulated particle counters,
beside the raw pymodbus read loop and the raw SQLite insert ceiling measured on the same run.

    python bench/ingest.py --quick              # under a minute
    python bench/ingest.py --counters 8 --seconds 20

The simulators run in their own processes (as devices would), so the CPU figures are the gateway's.
Each counter is a MET ONE 6000-style map read as fast as the link allows (every poll a sample), so the
gateway path and the raw loop make the same Modbus requests; the ratio says what the gateway costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from adapters.modbus.blocks import plan_blocks
from adapters.modbus.registermap import load_register_map
from gateway.config import PROJECT_CONFIG_DIR, load_site
from gateway.journal import Journal, JournalReader
from gateway.plugins import adapter_plugins
from gateway.runtime import run_gateway

MAP = PROJECT_CONFIG_DIR / "registermaps" / "metone-6000.yaml"
#: Linux: each thread's CPU can be read from /proc, so the gateway's is split by thread.
PER_THREAD = os.path.isdir("/proc/self/task")


@dataclass
class Figure:
    name: str
    rate: float
    unit: str
    cpu_s: float
    wall_s: float
    note: str = ""


def start_sims(n: int) -> tuple[list[subprocess.Popen[str]], list[int]]:
    procs, ports = [], []
    for i in range(n):
        proc = subprocess.Popen(
            [sys.executable, "-m", "device_sims.particle_counter.cli", "--profile", "metone6000",
             "--sample-time-s", "60", "--seed", str(i), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("a simulator did not start; run `cgt-gateway sim particle-counter --help`")
        ports.append(int(json.loads(line)["port"]))
    return procs, ports


def stop_sims(procs: Sequence[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


async def raw_modbus(ports: Sequence[int], seconds: float) -> Figure:
    """The library alone: one client per counter reading the same blocks the adapter reads, back to back."""
    rmap = load_register_map(MAP)
    blocks = plan_blocks(rmap.points.values(), max_gap_registers=rmap.max_gap_registers)
    cycles = 0

    async def loop(port: int) -> None:
        nonlocal cycles
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0, reconnect_delay=0)
        await client.connect()
        calls = {
            "holding": client.read_holding_registers, "input": client.read_input_registers,
            "coil": client.read_coils, "discrete": client.read_discrete_inputs,
        }
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                for b in blocks:
                    rr = await calls[b.table](b.address, count=b.count, device_id=1)
                    assert not rr.isError()
                cycles += 1
        finally:
            client.close()

    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(loop(p) for p in ports))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    return Figure("raw pymodbus loop", cycles / wall, "reads/s", cpu, wall, f"{len(blocks)} requests per read")


def raw_sqlite(path: Path, seconds: float, batch: int, payload_bytes: int) -> Figure:
    """SQLite alone: WAL, synchronous=FULL, one transaction per batch of rows of the journal's size."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE rec (seq INTEGER PRIMARY KEY, payload BLOB, raw BLOB, hash TEXT)")
    payload, rows, seq = b"x" * payload_bytes, 0, 0
    cpu0, t0 = time.process_time(), time.monotonic()
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO rec VALUES (?, ?, ?, ?)",
                         [(seq + i + 1, payload, b"\x00\x01\x02\x03", "0" * 64) for i in range(batch)])
        conn.execute("COMMIT")
        seq += batch
        rows += batch
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    conn.close()
    return Figure("raw SQLite insert (FULL)", rows / wall, "rows/s", cpu, wall, f"batches of {batch}")


class ThreadCpu:
    """CPU of this process's threads over a run, from /proc (Linux): the event loop's thread against the
    others (the journal writer), sampled while they live because the writer's thread ends with the run."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ThreadCpu:
        self._snap()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _snap(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended between listing and reading
            cpu = (int(fields[11]) + int(fields[12])) / tick
            self.first.setdefault(int(tid), cpu)
            self.last[int(tid)] = cpu

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self._snap()

    def split(self) -> tuple[float, float]:
        """CPU seconds of the event loop's thread, and of every other thread of this process."""
        used = {tid: self.last[tid] - self.first[tid] for tid in self.last}
        used.pop(self._thread.native_id or -1, None)  # the sampler itself
        loop = used.pop(threading.get_native_id(), 0.0)
        return loop, sum(used.values())


async def gateway(ports: Sequence[int], seconds: float, workdir: Path) -> tuple[Figure, Figure, dict[str, float]]:
    """The whole record path: adapter → normalise → concentrations → limits → hash chain → durable commit."""
    maps = workdir / "registermaps"
    maps.mkdir()
    (maps / "metone-bench.yaml").write_text(
        MAP.read_text().replace("sample_key: [sample_timestamp]", "sample_key: []  # bench: every poll a sample")
    )
    equipment = "".join(
        f"  - {{id: PC-{i}, class: particle_counter, kind: modbus, transport: tcp, host: 127.0.0.1, port: {p},\n"
        f"     device_id: 1, register_map: registermaps/metone-bench.yaml, poll_interval_s: 0.0001,\n"
        f"     particle_limits: {{grade: B, state: in_operation}}}}\n"
        for i, p in enumerate(ports)
    )
    site = workdir / "site.yaml"
    site.write_text(f"gateway: {{id: gw-bench}}\njournal: {{path: journal.sqlite}}\nequipment:\n{equipment}")
    loaded = load_site(site, adapter_plugins())
    batches = records = 0

    def count(committed: Sequence[object]) -> None:
        nonlocal batches, records
        batches += 1
        records += len(committed)

    threads = ThreadCpu() if PER_THREAD else None
    journals: list[Journal] = []
    cpu0, t0 = time.process_time(), time.monotonic()
    with threads or contextlib.nullcontext():
        await run_gateway(loaded, duration_s=seconds, on_records=count,
                          on_started=lambda running: journals.append(running.journal))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    with JournalReader(workdir / "journal.sqlite") as reader:
        sizes = [len(r.model_dump_json()) for r in reader.read(limit=200)]
    shape = {"records_per_read": records / max(batches, 1), "payload_bytes": sum(sizes) / max(len(sizes), 1)}
    if threads is not None:
        shape["loop_cpu_s"], shape["writer_cpu_s"] = threads.split()
    if journals:  # group commit at work: each transaction syncs once and rewrites its index pages once
        stats = journals[0].stats
        shape["journal_transactions"], shape["rows_per_transaction"] = stats.transactions, stats.rows / max(
            stats.transactions, 1)
    reads = Figure("gateway adapter path", batches / wall, "reads/s", cpu, wall, "reads normalised and committed")
    journalled = Figure("gateway journalled", records / wall, "records/s", cpu, wall,
                        f"{shape['records_per_read']:.0f} records per read")
    return reads, journalled, shape


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--counters", type=int, default=4, help="simulated counters, each in its own process")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    p.add_argument("--quick", action="store_true", help="2 counters, 5 s per measurement (under a minute)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.counters, args.seconds = 2, 5.0
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    from gateway import logs

    logs.configure("console", "warning")
    procs, ports = start_sims(args.counters)
    workdir = Path(tempfile.mkdtemp(prefix="cgt-bench-"))
    try:
        print(f"{args.counters} counters, {args.seconds:g} s per measurement, {os.cpu_count()} cores", file=sys.stderr)
        print("measuring the raw pymodbus loop ...", file=sys.stderr)
        raw = asyncio.run(raw_modbus(ports, args.seconds))
        print("measuring the gateway ...", file=sys.stderr)
        reads, journalled, shape = asyncio.run(gateway(ports, args.seconds, workdir))
        print("measuring the raw SQLite ceiling ...", file=sys.stderr)
        batch = max(1, round(shape["records_per_read"] * args.counters))
        sql = raw_sqlite(workdir / "raw.sqlite", args.seconds, batch, int(shape["payload_bytes"]))
    finally:
        stop_sims(procs)
        shutil.rmtree(workdir, ignore_errors=True)
    figures = [raw, reads, journalled, sql]
    derived = {
        "adapter_path_vs_raw_loop": reads.rate / raw.rate,
        "journalled_vs_sqlite_ceiling": journalled.rate / sql.rate,
        "gateway_cpu_us_per_record": 1e6 * journalled.cpu_s / max(journalled.rate * journalled.wall_s, 1),
        "gateway_cpu_us_per_read": 1e6 * reads.cpu_s / max(reads.rate * reads.wall_s, 1),
        "raw_loop_cpu_us_per_read": 1e6 * raw.cpu_s / max(raw.rate * raw.wall_s, 1),
    }
    if "loop_cpu_s" in shape:  # where the gateway's CPU goes: the event loop's thread, the journal writer's
        n_reads = max(reads.rate * reads.wall_s, 1)
        derived["loop_thread_cpu_us_per_read"] = 1e6 * shape["loop_cpu_s"] / n_reads
        derived["writer_thread_cpu_us_per_read"] = 1e6 * shape["writer_cpu_s"] / n_reads
    if "rows_per_transaction" in shape:
        derived["rows_per_transaction"] = shape["rows_per_transaction"]
        derived["transactions_per_s"] = shape["journal_transactions"] / reads.wall_s
    if args.json:
        print(json.dumps({"figures": [f.__dict__ for f in figures], "derived": derived}, indent=2))
        return 0
    print(f"\n{'path':<28} {'rate':>12} {'unit':<10} {'CPU %':>6}  note")
    for f in figures:
        print(f"{f.name:<28} {f.rate:>12,.0f} {f.unit:<10} {100 * f.cpu_s / f.wall_s:>5.0f}%  {f.note}")
    print()
    print(f"adapter path / raw pymodbus loop     {derived['adapter_path_vs_raw_loop']:.2f}")
    print(f"journalled / raw SQLite ceiling      {derived['journalled_vs_sqlite_ceiling']:.3f}")
    print(f"gateway CPU per journalled record    {derived['gateway_cpu_us_per_record']:.1f} µs")
    print(f"gateway CPU per device read          {derived['gateway_cpu_us_per_read']:.0f} µs "
          f"(raw loop {derived['raw_loop_cpu_us_per_read']:.0f} µs)")
    if "loop_thread_cpu_us_per_read" in derived:
        print(f"  of which event-loop thread         {derived['loop_thread_cpu_us_per_read']:.0f} µs, "
              f"journal writer thread {derived['writer_thread_cpu_us_per_read']:.0f} µs (SQLite and its fsyncs)")
    if "rows_per_transaction" in derived:
        print(f"journal transactions                 {derived['transactions_per_s']:,.0f}/s of "
              f"{derived['rows_per_transaction']:.0f} rows each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
