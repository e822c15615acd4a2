"""Latency benchmark: device change → durable commit, for the bar in DESIGN §7 (p99 ≤ 100 ms at 5 000
readings/s).

    python bench/latency.py                  # 1 000 items, 5 000 changes/s, 2 s warm-up + 10 s measured
    python bench/latency.py --json

The benchmark OPC UA server (bench/opcua_server.py --stamp, its own process) stamps every write with the
host clock as its SourceTimestamp; the gateway runs in this process as in bench/opcua.py. The observer is
the gateway's ``on_records`` hook, called in its event loop once each batch's transaction is durably
committed: a record's latency is the host clock then minus its ``source_time``. Both ends read the same
clock, so there is no offset to correct; the observer does not poll, so its resolution is the clock's,
and it sees a commit at the earliest when the loop gets back to it (so the figure is an upper bound).
The publishing interval of the subscription is part of the path a change takes and of the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the OPC UA bench helpers beside this script
from bench.opcua import PUBLISH_MS, gateway, start_server, stop_server  # noqa: E402
from gateway import logs  # noqa: E402
from gateway.records import ProcessRecord  # noqa: E402


@dataclass
class Latency:
    """One run's figures; milliseconds unless named otherwise."""

    items: int
    rate: float
    publish_ms: float
    seconds: float
    samples: int
    readings_per_s: float
    without_source_time: int
    total: dict[str, float]  # source_time → durable commit: the bar's figure
    arrival: dict[str, float]  # source_time → gateway_time: the server's publishing and the wire
    in_gateway: dict[str, float]  # gateway_time → durable commit: normalise, hash, journal
    observer: str
    clock_resolution_us: float


class Observer:
    """Collects commit time minus source_time for every record committed after the warm-up."""

    def __init__(self, warmup_s: float) -> None:
        self.warmup_s = warmup_s
        self.start: float | None = None
        self.end: float | None = None
        self.latencies: list[float] = []
        self.arrivals: list[float] = []
        self.in_gateway: list[float] = []
        self.missing = 0  # records with no source_time (events): counted, not measured

    def __call__(self, committed: Sequence[ProcessRecord]) -> None:
        now = time.time()
        if self.start is None:  # the first commit: the subscription's initial values, then the warm-up
            self.start = now + self.warmup_s
        if now < self.start:
            return
        self.end = now
        for record in committed:
            if record.source_time is None:
                self.missing += 1
            else:
                source, received = record.source_time.timestamp(), record.gateway_time.timestamp()
                self.latencies.append(now - source)
                self.arrivals.append(received - source)
                self.in_gateway.append(now - received)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max in milliseconds."""
    ordered = sorted(seconds)
    figures = {f"p{q}_ms": round(1e3 * percentile(ordered, q), 2) for q in (50, 95, 99)}
    return figures | {"max_ms": round(1e3 * ordered[-1], 2)}


def measure(
    items: int, rate: float, seconds: float, warmup_s: float, publish_ms: float, root: Path | None = None,
) -> Latency:
    """One run: a fresh stamping server and journal, the gateway for warm-up + ``seconds``."""
    observer = Observer(warmup_s)
    proc, endpoint = start_server(items, rate, stamp=True)
    workdir = Path(tempfile.mkdtemp(prefix="cgt-bench-latency-", dir=root))
    try:
        asyncio.run(gateway(endpoint, items, warmup_s + seconds, workdir,
                            observe=observer, publish_ms=publish_ms))
    finally:
        stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    if not observer.latencies or observer.start is None or observer.end is None:
        raise SystemExit("no record was committed after the warm-up: nothing to measure")
    window = max(observer.end - observer.start, 1e-9)
    return Latency(
        items=items, rate=rate, publish_ms=publish_ms, seconds=round(window, 3), samples=len(observer.latencies),
        readings_per_s=round(len(observer.latencies) / window, 1), without_source_time=observer.missing,
        total=summary(observer.latencies), arrival=summary(observer.arrivals),
        in_gateway=summary(observer.in_gateway),
        observer="on_records after each durable commit, in the gateway's loop; no polling",
        clock_resolution_us=1e6 * time.get_clock_info("time").resolution,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1000, help="monitored items, written round-robin")
    p.add_argument("--rate", type=float, default=5000, help="server changes per second, all items together")
    p.add_argument("--seconds", type=float, default=10.0, help="measured time, after the warm-up")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds after the first commit not measured")
    p.add_argument("--publish-ms", type=float, default=PUBLISH_MS, help="the subscription's publishing interval")
    p.add_argument("--dir", type=Path, default=None,
                   help="where the journal goes (default the temp dir); a tmpfs takes the disk out of the figure")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    logs.configure("console", "warning")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    print(f"{args.items} items at {args.rate:,.0f} changes/s: measuring ...", file=sys.stderr)
    r = measure(args.items, args.rate, args.seconds, args.warmup, args.publish_ms, args.dir)
    if args.json:
        print(json.dumps(asdict(r), indent=2))
        return 0
    print(f"\ndevice change (SourceTimestamp) → durable commit; {r.items} items, server {r.rate:,.0f} changes/s, "
          f"publishing interval {r.publish_ms:g} ms")
    print(f"observer: {r.observer}; clock resolution {r.clock_resolution_us:g} µs")
    print(f"{r.samples:,} samples over {r.seconds:g} s = {r.readings_per_s:,.0f} readings/s committed "
          f"({r.without_source_time} records without a source time not measured)")
    print(f"{'':<36} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, figures in (("source_time → durable commit", r.total),
                          ("  source_time → gateway_time", r.arrival),
                          ("  gateway_time → durable commit", r.in_gateway)):
        print(f"{name:<36} " + " ".join(f"{figures[k]:>8.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
    verdict = "met" if r.total["p99_ms"] <= 100 else "not met"
    if r.readings_per_s < 0.95 * 5000:
        verdict += f" at {r.readings_per_s:,.0f} readings/s, below the bar's load"
    print(f"bar: p99 ≤ 100 ms at 5 000 readings/s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
