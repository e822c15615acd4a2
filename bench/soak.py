"""Soak: run a site for hours and watch the gateway for drift. A leak shows as a steady slope.

    make soak                                   # SOAK_HOURS (default 4) of the demo-like site
    python bench/soak.py --minutes 10           # a short form
    python bench/soak.py --site suite --minutes 10

``--site demo`` is config/demo.yaml (its scenario's disconnects, excursions and door openings included)
with its simulators moved into processes of their own (bench/suite_sims.py) and its journal, API, file
drop and OPC UA server in a temporary folder on free ports; ``--site suite`` is the 40-device, 2 000-tag
suite of bench/suite.py with a one-hour journal retention. The gateway runs as on site
(``python -m gateway.cli run``). Every minute one row goes to the CSV and one line to the terminal: the
gateway's RSS and peak, CPU over the minute, open descriptors and threads (/proc), the journal's size, head
and records/s, the sinks' backlog and the devices up (its /metrics). The asyncio task count is not
observable from outside: the API exposes no process metrics, so descriptors and threads stand in for it.

At the end, least-squares slopes after the warm-up: RSS (and its anonymous part, where a leak shows) in
MB/hour and CPU in points/hour, each with its standard error, and a verdict. Short runs cannot see a slow
leak (the error says how slow) nor tell a rise from a cache filling: that takes hours.

The MES stand-in keeps every record it receives in memory (about 3.5 KB each): the suite's 2 000 records/s
fill 25 GB an hour of it, so soak the suite for minutes, the demo for hours.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the helpers beside this script
from bench.procstat import Metrics, ProcSample, proc_sample, scrape  # noqa: E402
from bench.suite_procs import (  # noqa: E402
    SimGroup,
    endpoints_of,
    free_port,
    start_gateway,
    start_groups,
    tear_down,
    wait_until_up,
)
from bench.suite_site import Plan, sim_groups, write_site  # noqa: E402
from gateway.config import PROJECT_CONFIG_DIR, substitute  # noqa: E402

RSS_BAR_MB = 200.0
#: Growth a day under which a rising RSS is noted but not called a leak.
RSS_TOLERANCE_MB_PER_DAY = 10.0
#: CPU drift a day (percentage points of one core) under which CPU is called steady.
CPU_TOLERANCE_PTS_PER_DAY = 1.0
FIELDS = ["time", "elapsed_min", "rss_mb", "rss_anon_mb", "peak_rss_mb", "cpu_pct", "main_thread_cpu_pct", "open_fds",
          "threads", "journal_mb", "last_seq", "records_per_s", "sink_backlog", "devices_up", "devices",
          "device_failures", "sims_cpu_pct", "sims_rss_mb", "load_1min"]


def demo_groups() -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """config/demo.yaml's simulators (the MES stand-in apart from the devices) and the rest of the file."""
    data = dict(yaml.safe_load((PROJECT_CONFIG_DIR / "demo.yaml").read_text()))
    sims = data.pop("simulators")
    return {"devices": [s for s in sims if s["kind"] != "mes"], "mes": [s for s in sims if s["kind"] == "mes"]}, data


def write_demo_site(workdir: Path, data: dict[str, Any], endpoints: dict[str, dict[str, Any]], api_port: int) -> Path:
    """The demo's site with every file and port of its own in ``workdir``, and the simulators' endpoints filled in."""
    data = dict(data)
    data["journal"] = {**data["journal"], "path": str(workdir / "journal.sqlite")}
    data["api"] = {"listen": f"127.0.0.1:{api_port}", "users_file": str(workdir / "users.yaml")}
    sinks = []
    for sink in data["sinks"]:
        sink = dict(sink)
        if sink["type"] == "file":
            sink["folder"] = str(workdir / "mes-drop")
        elif sink["type"] == "opcua-server":
            sink["endpoint"] = f"opc.tcp://127.0.0.1:{free_port()}/cgt-gateway/"
            sink["certificate"] = str(workdir / "pki" / "opcua-server-cert.der")
            sink["private_key"] = str(workdir / "pki" / "opcua-server-key.pem")
        sinks.append(sink)
    data["sinks"] = sinks
    site = workdir / "site.yaml"
    site.write_text(yaml.safe_dump(substitute(data, endpoints), sort_keys=False, width=120))
    return site


@dataclass(frozen=True)
class Sample:
    at: float
    gateway: ProcSample
    metrics: Metrics | None
    sims: list[ProcSample]


def take(gateway_pid: int, groups: Sequence[SimGroup], api_port: int) -> Sample:
    try:
        metrics: Metrics | None = scrape(api_port)
    except OSError:
        metrics = None  # a missed scrape is a blank in the row, not the end of the soak
    sims = []
    for g in groups:
        try:
            sims.append(proc_sample(g.proc.pid))
        except OSError:
            pass
    return Sample(time.monotonic(), proc_sample(gateway_pid), metrics, sims)


def row(start: Sample, prev: Sample, now: Sample) -> dict[str, Any]:
    dt = now.at - prev.at
    g, m, pm = now.gateway, now.metrics, prev.metrics
    rate = (m.last_seq - pm.last_seq) / dt if m is not None and pm is not None else None
    sims_cpu = sum(s.cpu_s for s in now.sims) - sum(s.cpu_s for s in prev.sims)
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_min": round((now.at - start.at) / 60, 2),
        "rss_mb": round(g.rss_mb, 1),
        "rss_anon_mb": round(g.anon_mb, 1),
        "peak_rss_mb": round(g.hwm_mb, 1),
        "cpu_pct": round(100 * (g.cpu_s - prev.gateway.cpu_s) / dt, 2),
        "main_thread_cpu_pct": round(100 * (g.main_thread_cpu_s - prev.gateway.main_thread_cpu_s) / dt, 2),
        "open_fds": g.fds,
        "threads": g.threads,
        "journal_mb": round(m.journal_bytes / 2**20, 1) if m else "",
        "last_seq": m.last_seq if m else "",
        "records_per_s": round(rate, 1) if rate is not None else "",
        "sink_backlog": m.backlog if m else "",
        "devices_up": m.devices_up if m else "",
        "devices": m.devices if m else "",
        "device_failures": m.device_failures if m else "",
        "sims_cpu_pct": round(100 * sims_cpu / dt, 2),
        "sims_rss_mb": round(sum(s.rss_mb for s in now.sims), 1),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def progress(r: dict[str, Any], total_min: float) -> str:
    rate = f"{r['records_per_s']:>8,.0f}" if r["records_per_s"] != "" else "       ?"
    journal = f"{r['journal_mb']:>8,.0f} MB" if r["journal_mb"] != "" else "       ? MB"
    return (f"[{r['elapsed_min']:>6.1f}/{total_min:.0f} min] RSS {r['rss_mb']:6.1f} MB (peak {r['peak_rss_mb']:.1f})"
            f"  CPU {r['cpu_pct']:5.1f} %  fds {r['open_fds']:>3}  threads {r['threads']:>3}  journal {journal}"
            f"  rec/s {rate}  backlog {r['sink_backlog']}  up {r['devices_up']}/{r['devices']}"
            f"  load {r['load_1min']:.2f}")


def fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and its standard error (inf when there are too few points to tell)."""
    n = len(xs)
    if n < 3:
        return 0.0, math.inf
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, math.inf
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    resid = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, math.sqrt(resid / (n - 2) / sxx)


def drift(rows: Sequence[dict[str, Any]], warmup_min: float) -> list[str]:
    """The slopes after the warm-up and what they say."""
    steady = [r for r in rows if r["elapsed_min"] >= warmup_min]
    if len(steady) < 3:
        return [f"too few samples after the {warmup_min:g}-minute warm-up to fit a slope ({len(steady)})"]
    hours = [r["elapsed_min"] / 60 for r in steady]
    lines = []
    rss, rss_se = fit(hours, [r["rss_mb"] for r in steady])
    anon, anon_se = fit(hours, [r["rss_anon_mb"] for r in steady])
    cpu, cpu_se = fit(hours, [r["cpu_pct"] for r in steady])
    fds, fds_se = fit(hours, [r["open_fds"] for r in steady])
    threads, _ = fit(hours, [r["threads"] for r in steady])
    journal = [r for r in steady if r["journal_mb"] != ""]
    jslope, _ = fit([r["elapsed_min"] / 60 for r in journal], [r["journal_mb"] for r in journal])
    span = hours[-1] - hours[0]
    lines.append(f"after a {warmup_min:g}-minute warm-up, {len(steady)} samples over {60 * span:.0f} min:")
    lines.append(f"  RSS slope      {rss:+8.2f} ± {rss_se:.2f} MB/hour   (last {steady[-1]['rss_mb']:.1f} MB, "
                 f"peak {steady[-1]['peak_rss_mb']:.1f} MB)")
    lines.append(f"  of which anon  {anon:+8.2f} ± {anon_se:.2f} MB/hour   (heap and stacks: last "
                 f"{steady[-1]['rss_anon_mb']:.1f} MB)")
    lines.append(f"  CPU slope      {cpu:+8.2f} ± {cpu_se:.2f} points/hour (mean "
                 f"{sum(r['cpu_pct'] for r in steady) / len(steady):.1f} % of one core)")
    lines.append(f"  fds slope      {fds:+8.2f} ± {fds_se:.2f} /hour   threads slope {threads:+.2f} /hour")
    lines.append(f"  journal grows  {jslope:8.1f} MB/hour")
    if rss > 3 * rss_se and span < 1:
        lines.append(f"verdict: RSS rose {rss:+.1f} MB/hour over {60 * span:.0f} min: too short to tell a leak from a "
                     "cache filling or a one-off step; run it for hours (make soak)")
    elif rss > 3 * rss_se and 24 * rss > RSS_TOLERANCE_MB_PER_DAY:
        left = max(RSS_BAR_MB - steady[-1]["rss_mb"], 0) / rss
        lines.append(f"verdict: RSS rises steadily ({24 * rss:.0f} MB a day at this rate; the {RSS_BAR_MB:.0f} MB "
                     f"bar in {left:.1f} h): looks like a leak")
    elif rss > 3 * rss_se:
        lines.append(f"verdict: RSS rises slightly, {24 * rss:.1f} MB a day (under {RSS_TOLERANCE_MB_PER_DAY:g}): "
                     "no leak that matters")
    else:
        lines.append(f"verdict: no steady RSS rise this run can tell from noise (a run this long shows a leak of "
                     f"about {3 * rss_se:.1f} MB/hour or more)")
    if cpu > 3 * cpu_se and 24 * cpu > CPU_TOLERANCE_PTS_PER_DAY:
        lines.append(f"verdict: CPU climbs {24 * cpu:.1f} points a day: work grows with time (a growing scan?)")
    else:
        lines.append("verdict: CPU steady")
    if fds > 3 * fds_se and fds > 0:
        lines.append("verdict: open descriptors grow: a connection or file leak?")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=float(os.environ.get("SOAK_HOURS", 4)),
                   help="how long (default $SOAK_HOURS or 4)")
    p.add_argument("--minutes", type=float, help="how long, in minutes (instead of --hours)")
    p.add_argument("--site", choices=("demo", "suite"), default="demo", help="what runs (default demo)")
    p.add_argument("--interval-s", type=float, default=60.0, help="seconds between samples (default 60)")
    p.add_argument("--warmup-min", type=float, help="minutes left out of the slopes (default 10 %% of the run, 2..10)")
    p.add_argument("--csv", type=Path, help="where the samples go (default data/soak/soak-SITE-TIME.csv)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (site, journal, logs)")
    args = p.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else 60 * args.hours
    warmup = args.warmup_min if args.warmup_min is not None else min(10.0, max(2.0, minutes / 10))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.csv or Path("data") / "soak" / f"soak-{args.site}-{stamp}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.site == "suite" and minutes > 60:
        print("warning: the MES stand-in keeps every record in memory, about 25 GB an hour at the suite's rate",
              file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix=f"cgt-soak-{args.site}-"))
    groups: list[SimGroup] = []
    gateway = None
    rows: list[dict[str, Any]] = []
    try:
        api_port = free_port()
        if args.site == "demo":
            sims, data = demo_groups()
            groups = start_groups(workdir, sims)
            site = write_demo_site(workdir, data, endpoints_of(groups), api_port)
            devices = len(data["equipment"])
        else:
            plan = Plan(retention_days=1 / 24)
            groups = start_groups(workdir, sim_groups(plan))
            site = write_site(workdir, plan, endpoints_of(groups), api_port)
            devices = plan.devices
        gateway = start_gateway(site, workdir)
        wait_until_up(gateway, api_port, devices, workdir)
        print(f"soaking the {args.site} site ({devices} devices) for {minutes:g} min, a sample every "
              f"{args.interval_s:g} s into {out}", file=sys.stderr)
        start = prev = take(gateway.pid, groups, api_port)
        samples = max(1, int(60 * minutes // args.interval_s))
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            try:
                for _ in range(samples):
                    time.sleep(max(0.0, prev.at + args.interval_s - time.monotonic()))
                    if gateway.poll() is not None:
                        print(f"the gateway exited with {gateway.returncode}; see {workdir / 'gateway.log'}",
                              file=sys.stderr)
                        args.keep = True
                        break
                    now = take(gateway.pid, groups, api_port)
                    rows.append(row(start, prev, now))
                    writer.writerow(rows[-1])
                    f.flush()
                    print(progress(rows[-1], minutes), flush=True)
                    prev = now
            except KeyboardInterrupt:
                print("interrupted: the drift so far", file=sys.stderr)
    finally:
        tear_down(gateway, groups, workdir, args.keep)
    print()
    for line in drift(rows, warmup):
        print(line)
    print(f"samples: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
