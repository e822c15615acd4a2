"""OPC UA benchmark: notifications/s through the OPC UA adapter into the journal, beside a raw asyncua
subscription loop on the same server and run, for 100, 1 000 and 5 000 monitored items.

    python bench/opcua.py --quick            # 100 and 1 000 items, 5 s each
    python bench/opcua.py --seconds 10       # 100, 1 000 and 5 000 items

The server (bench/opcua_server.py) runs in its own process and rewrites its variables round-robin
at a fixed rate, so both clients see the same stream of data changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy

from gateway import logs
from gateway.config import load_site
from gateway.plugins import adapter_plugins
from gateway.records import ProcessRecord
from gateway.runtime import run_gateway
from gateway.supervisor import OnRecords

HERE = Path(__file__).resolve().parent
NAMESPACE = "urn:cgt-gateway:bench"
PUBLISH_MS = 50


@dataclass
class Row:
    items: int
    raw_rate: float
    raw_cpu_s: float
    gateway_rate: float
    gateway_cpu_s: float
    seconds: float


def start_server(items: int, rate: float, *, stamp: bool = False) -> tuple[subprocess.Popen[str], str]:
    """The benchmark server in its own process; ``stamp`` gives every write a SourceTimestamp."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "opcua_server.py"), "--items", str(items), "--rate", str(rate)]
        + (["--stamp"] if stamp else []),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the benchmark OPC UA server did not start")
    return proc, json.loads(line)["endpoint"]


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    if proc.stdout is not None:
        proc.stdout.close()


async def raw_loop(endpoint: str, items: int, seconds: float) -> tuple[float, float]:
    """asyncua alone: one subscription in iterator mode over every variable, counting data changes."""
    client = Client(endpoint, timeout=10)
    await client.connect()
    try:
        idx = await client.get_namespace_index(NAMESPACE)
        nodes = [client.get_node(ua.NodeId(f"v{i}", idx)) for i in range(items)]
        sub = await client.create_subscription(PUBLISH_MS, None, queue_maxsize=1_000_000,
                                               overflow=OverflowPolicy.WARN)
        for start in range(0, items, 1000):
            await sub.subscribe_data_change(nodes[start:start + 1000], queuesize=10, sampling_interval=0)
        count = 0
        cpu0, t0 = time.process_time(), time.monotonic()
        deadline = t0 + seconds
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                count += 1
            if time.monotonic() >= deadline:
                break
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        await sub.delete()
        return count / wall, cpu
    finally:
        await client.disconnect()


def node_map(items: int) -> str:
    """A node map with one point per benchmark variable."""
    points = "".join(
        f"  v{i}: {{node_id: 's=v{i}', parameter: bench_value_{i}, unit: '1', queue_size: 10}}\n"
        for i in range(items)
    )
    return f"name: bench\nnamespace_uri: {NAMESPACE}\npoints:\n{points}"


async def gateway(
    endpoint: str, items: int, seconds: float, workdir: Path, *,
    observe: OnRecords | None = None, publish_ms: float = PUBLISH_MS,
) -> tuple[float, float]:
    """The whole path: subscription → normalise → hash chain → durable commit. ``observe`` is handed
    every batch of records once committed (the latency benchmark's end point)."""
    (workdir / "bench-map.yaml").write_text(node_map(items))
    site = workdir / "site.yaml"
    site.write_text(
        "gateway: {id: gw-bench}\njournal: {path: journal.sqlite}\nequipment:\n"
        f"  - {{id: SRV, class: bench, kind: opcua, endpoint: '{endpoint}', node_map: bench-map.yaml,\n"
        f"     publishing_interval_ms: {publish_ms:g}}}\n"
    )
    loaded = load_site(site, adapter_plugins())
    records = 0

    def count(committed: Sequence[ProcessRecord]) -> None:
        nonlocal records
        records += len(committed)
        if observe is not None:
            observe(committed)

    cpu0, t0 = time.process_time(), time.monotonic()
    await run_gateway(loaded, duration_s=seconds, on_records=count)
    return records / (time.monotonic() - t0), time.process_time() - cpu0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    p.add_argument("--rate", type=float, default=10_000, help="server writes per second")
    p.add_argument("--items", type=int, nargs="*", default=[100, 1000, 5000], help="monitored item counts")
    p.add_argument("--quick", action="store_true", help="100 and 1 000 items, 5 s each")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.items, args.seconds = [100, 1000], 5.0
    logs.configure("console", "warning")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    rows: list[Row] = []
    for items in args.items:
        print(f"{items} items: measuring ...", file=sys.stderr)
        proc, endpoint = start_server(items, args.rate)
        workdir = Path(tempfile.mkdtemp(prefix="cgt-bench-opcua-"))
        try:
            raw_rate, raw_cpu = asyncio.run(raw_loop(endpoint, items, args.seconds))
            gw_rate, gw_cpu = asyncio.run(gateway(endpoint, items, args.seconds, workdir))
        finally:
            stop_server(proc)
            shutil.rmtree(workdir, ignore_errors=True)
        rows.append(Row(items, raw_rate, raw_cpu, gw_rate, gw_cpu, args.seconds))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    print(f"\nserver writes {args.rate:,.0f}/s round-robin; publishing interval {PUBLISH_MS} ms; "
          f"{args.seconds:g} s per measurement")
    print(f"{'items':>6} {'raw asyncua notif/s':>20} {'gateway records/s':>18} {'ratio':>6} "
          f"{'raw µs CPU/notif':>17} {'gateway µs CPU/rec':>19}")
    for r in rows:
        raw_us = 1e6 * r.raw_cpu_s / max(r.raw_rate * r.seconds, 1)
        gw_us = 1e6 * r.gateway_cpu_s / max(r.gateway_rate * r.seconds, 1)
        print(f"{r.items:>6} {r.raw_rate:>20,.0f} {r.gateway_rate:>18,.0f} {r.gateway_rate / r.raw_rate:>6.2f} "
              f"{raw_us:>17.1f} {gw_us:>19.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
