"""Typical-suite footprint: a gateway reading 40 devices, 2 000 tags at 1 Hz, against DESIGN.md §7 "Footprint"
(under 10 % of one core, under 200 MB RSS).

    python bench/suite.py --quick        # about 60 s: 15 s warm-up, 45 s measured
    python bench/suite.py                # 5 min: 30 s warm-up, 270 s measured
    python bench/suite.py --json

The suite (bench/suite_site.py) is simulated equipment in five simulator processes (counters, processors,
DAQs, serial devices, MES stand-in), and the gateway runs in its own process exactly as on site
(``python -m gateway.cli run -c site.yaml``): durable journal, operator API, HTTP sink to the MES stand-in.
Only the gateway's process is measured against the bars: CPU from /proc/<pid>/stat (utime + stime) over
the window after the warm-up, RSS now and at its peak (VmHWM), records/s from its /metrics; the
simulators' processes are shown apart. The machine's load average is printed: on a shared machine the
figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
from bench.suite_site import Plan, TagRate, sim_groups, tag_rates, write_site  # noqa: E402
from gateway.config import load_site  # noqa: E402
from gateway.plugins import adapter_plugins  # noqa: E402

CPU_BAR_PCT = 10.0
RSS_BAR_MB = 200.0
COST_BAR_US = 25.0
RSS_SAMPLE_S = 5.0


@dataclass(frozen=True)
class Window:
    """The steady window: the gateway's and every simulator group's figures at its two ends."""

    wall_s: float
    gateway: tuple[ProcSample, ProcSample]
    metrics: tuple[Metrics, Metrics]
    sims: dict[str, tuple[ProcSample, ProcSample]]
    rss_max_mb: float
    rss_mean_mb: float


def measure(gateway_pid: int, groups: Sequence[SimGroup], api_port: int, seconds: float) -> Window:
    """Sample the gateway every few seconds through the window (RSS) and at both ends (CPU, records)."""
    t0 = time.monotonic()
    g0, m0 = proc_sample(gateway_pid), scrape(api_port)
    s0 = {g.name: proc_sample(g.proc.pid) for g in groups}
    rss = [g0.rss_mb]
    end = t0 + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(RSS_SAMPLE_S, end - now))
        rss.append(proc_sample(gateway_pid).rss_mb)
    g1, m1 = proc_sample(gateway_pid), scrape(api_port)
    s1 = {g.name: proc_sample(g.proc.pid) for g in groups}
    wall = time.monotonic() - t0
    return Window(wall, (g0, g1), (m0, m1), {k: (s0[k], s1[k]) for k in s0}, max(rss), sum(rss) / len(rss))


def mes_stored(endpoints: dict[str, dict[str, Any]]) -> int | None:
    """How many distinct records the MES stand-in holds (its /_state), or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoints['mes']['port']}/_state", timeout=5) as r:
            return int(json.loads(r.read())["stored"])
    except (OSError, KeyError, ValueError):
        return None


def figures(rates: Sequence[TagRate], w: Window, mes: int | None, equipment_class: dict[str, str],
            groups: Sequence[SimGroup], warmup_s: float, load: tuple[tuple[float, ...], tuple[float, ...]]
            ) -> dict[str, Any]:
    (g0, g1), (m0, m1) = w.gateway, w.metrics
    cpu_s = g1.cpu_s - g0.cpu_s
    records = m1.last_seq - m0.last_seq
    by_class: dict[str, dict[str, float]] = defaultdict(lambda: {"devices": 0, "tags": 0, "tags_per_s": 0.0,
                                                                 "records_per_s": 0.0})
    for r in rates:
        row = by_class[r.device_class]
        row["devices"] += 1
        row["tags"] += r.tags
        row["tags_per_s"] += r.per_s
    for eq, n in m1.records.items():
        by_class[equipment_class.get(eq, "?")]["records_per_s"] += (n - m0.records.get(eq, 0)) / w.wall_s
    tags_per_s = sum(r.per_s for r in rates)
    return {
        "devices": len(rates),
        "tags_per_s": tags_per_s,
        "classes": dict(by_class),
        "warmup_s": warmup_s,
        "window_s": w.wall_s,
        "cores": os.cpu_count(),
        "load_average_start": load[0],
        "load_average_end": load[1],
        "gateway": {
            "cpu_pct_of_one_core": 100 * cpu_s / w.wall_s,
            "main_thread_cpu_pct": 100 * (g1.main_thread_cpu_s - g0.main_thread_cpu_s) / w.wall_s,
            "rss_mb": g1.rss_mb,
            "rss_max_in_window_mb": w.rss_max_mb,
            "rss_mean_in_window_mb": w.rss_mean_mb,
            "rss_peak_vmhwm_mb": g1.hwm_mb,
            "records_per_s": records / w.wall_s,
            "cpu_us_per_record": 1e6 * cpu_s / max(records, 1),
            "open_fds": g1.fds,
            "threads": g1.threads,
        },
        "checks": {
            "devices_up": m1.devices_up,
            "devices_seen": m1.devices,
            "device_failures_in_window": m1.device_failures - m0.device_failures,
            "journal_last_seq": m1.last_seq,
            "mes_backlog_at_end": m1.backlog,
            "mes_stored_at_end": mes,
        },
        "simulators": {
            g.name: {"devices": g.devices,
                     "cpu_pct_of_one_core": 100 * (w.sims[g.name][1].cpu_s - w.sims[g.name][0].cpu_s) / w.wall_s,
                     "rss_mb": w.sims[g.name][1].rss_mb}
            for g in groups
        },
    }


def report(f: dict[str, Any]) -> None:
    g, c = f["gateway"], f["checks"]
    print(f"\n{f['devices']} devices reading {f['tags_per_s']:,.0f} tags/s; {f['cores']} cores; "
          f"warm-up {f['warmup_s']:.0f} s, measured {f['window_s']:.0f} s")
    print("load average (1, 5, 15 min) at start {} and end {}".format(
        *(" ".join(f"{x:.2f}" for x in la) for la in (f["load_average_start"], f["load_average_end"]))))
    print(f"\n{'device class':<24} {'devices':>7} {'tags/device':>11} {'tags/s':>7} {'records/s':>10}")
    for name, row in sorted(f["classes"].items(), key=lambda kv: -kv[1]["tags_per_s"]):
        print(f"{name:<24} {row['devices']:>7.0f} {row['tags'] / row['devices']:>11.0f} {row['tags_per_s']:>7.0f} "
              f"{row['records_per_s']:>10.0f}")
    extras = ", ".join(f"{k} +{v}" for k, v in f["extra_register_points_per_counter"].items())
    print(f"(each counter's map is the shipped map plus extra register points to reach 2 000 tags/s: {extras})")
    rows = [
        ("tags read per second", f"{f['tags_per_s']:,.0f}", "2 000", f["tags_per_s"] / 2000),
        ("gateway CPU, % of one core", f"{g['cpu_pct_of_one_core']:.1f} %", "< 10 %",
         g["cpu_pct_of_one_core"] / CPU_BAR_PCT),
        ("gateway RSS at the end", f"{g['rss_mb']:.0f} MB", "< 200 MB", g["rss_mb"] / RSS_BAR_MB),
        ("gateway RSS peak (VmHWM)", f"{g['rss_peak_vmhwm_mb']:.0f} MB", "< 200 MB",
         g["rss_peak_vmhwm_mb"] / RSS_BAR_MB),
        ("records journalled per s", f"{g['records_per_s']:,.0f}", "-", None),
        ("gateway CPU per record", f"{g['cpu_us_per_record']:.1f} us", "<= 25 us",
         g["cpu_us_per_record"] / COST_BAR_US),
    ]
    print(f"\n{'figure':<28} {'value':>10} {'bar':>9} {'figure/bar':>10}")
    for name, value, bar, ratio in rows:
        print(f"{name:<28} {value:>10} {bar:>9} {'' if ratio is None else f'{ratio:.2f}':>10}")
    print(f"(gateway: event-loop thread {g['main_thread_cpu_pct']:.1f} % of the CPU figure, other threads "
          f"{g['cpu_pct_of_one_core'] - g['main_thread_cpu_pct']:.1f} %;")
    print(f" {g['open_fds']} open descriptors, {g['threads']} threads; RSS in the window "
          f"mean {g['rss_mean_in_window_mb']:.0f} MB, max {g['rss_max_in_window_mb']:.0f} MB)")
    stored = "?" if c["mes_stored_at_end"] is None else f"{c['mes_stored_at_end']:,}"
    print(f"checks: {c['devices_up']}/{f['devices']} devices up, {c['device_failures_in_window']} device failures "
          f"in the window, journal seq {c['journal_last_seq']:,}, MES holds {stored} "
          f"(backlog {c['mes_backlog_at_end']:,} at the end)")
    print(f"\n{'simulator process':<18} {'devices':>7} {'CPU % of one core':>18} {'RSS MB':>7}")
    for name, s in f["simulators"].items():
        print(f"{name:<18} {s['devices']:>7} {s['cpu_pct_of_one_core']:>17.1f}% {s['rss_mb']:>7.0f}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=270.0, help="measured window after the warm-up (default 270)")
    p.add_argument("--warmup", type=float, default=30.0, help="seconds after every device is up (default 30)")
    p.add_argument("--quick", action="store_true", help="15 s warm-up, 45 s measured (about a minute)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the work folder (site, maps, journal, logs)")
    p.add_argument("--commit-window-ms", type=float, default=0.0,
                   help="the gateway's journal.commit_window_ms (default 0: each read committed at once)")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="run the gateway under cProfile, stats to FILE (the figures then include the profiler)")
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.seconds = 15.0, 45.0
    plan = Plan(commit_window_ms=args.commit_window_ms)
    workdir = Path(tempfile.mkdtemp(prefix="cgt-bench-suite-"))
    groups: list[SimGroup] = []
    gateway = None
    try:
        print(f"starting {plan.devices} simulated devices in 5 processes ...", file=sys.stderr)
        groups = start_groups(workdir, sim_groups(plan))
        api_port = free_port()
        site = write_site(workdir, plan, endpoints_of(groups), api_port)
        loaded = load_site(site, adapter_plugins())
        rates = tag_rates(loaded)
        classes = {eq.id: str(eq.equipment_class) for eq in loaded.equipment}
        extras = {Path(eq.register_map).stem: sum(1 for n in loaded.maps[eq.id].points if n.startswith("reg_"))
                  for eq in loaded.equipment if eq.kind == "modbus"}
        print(f"site: {len(rates)} devices, {sum(r.per_s for r in rates):,.0f} tags/s; starting the gateway ...",
              file=sys.stderr)
        gateway = start_gateway(site, workdir, args.profile)
        wait_until_up(gateway, api_port, plan.devices, workdir)
        print(f"every device up; warming up {args.warmup:g} s, then measuring {args.seconds:g} s ...", file=sys.stderr)
        time.sleep(args.warmup)
        load0 = os.getloadavg()
        try:
            window = measure(gateway.pid, groups, api_port, args.seconds)
        except OSError as exc:
            args.keep = True
            raise SystemExit(f"a process of the suite went away while measured ({exc}); logs in {workdir}") from None
        load1 = os.getloadavg()
        result = figures(rates, window, mes_stored(endpoints_of(groups)), classes, groups, args.warmup,
                         (load0, load1))
        result["extra_register_points_per_counter"] = extras
    finally:
        tear_down(gateway, groups, workdir, args.keep)
    if args.json:
        print(json.dumps(result, indent=2, default=lambda o: asdict(o)))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
