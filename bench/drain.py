"""Drain benchmark: how fast a backlog of committed records leaves through the HTTP and MQTT sinks,
beside the raw aiohttp and aiomqtt loops sending the same bytes to the same receivers on the same run.

    python bench/drain.py --quick            # 30 000 records (about a minute)
    python bench/drain.py                    # 200 000 records: 100 s of a 2 000 records/s site
    python bench/drain.py --only mqtt --json # one sink, the figures as JSON
    python bench/drain.py --quick --profile  # also the top costs of each gateway drain (cProfile, to stderr)
    python bench/drain.py --only mqtt --broker-stock     # mosquitto's shipped set_tcp_nodelay false
    python bench/drain.py --only mqtt --inflight --batch-topic gateway   # one MQTT mode only

The project's bar: a one-hour backlog drains at >= 20x real time, where "x real time" is records/s
divided by the site's rate (--site-rate: 2 000 tags at 1 Hz by default). The backlog is a real journal
of particle-counter readings whose gateway_time advances at the site rate; each measurement drains all
of it through a fresh cursor. The receivers run in their own processes, so the CPU figures are the
gateway's: a fresh MES stand-in per HTTP measurement (it keeps one copy per seq and checks each hash),
one mosquitto (the tests' site-like config) and one subscriber (persistent session, QoS 1, counting
distinct (gateway_id, seq)) for MQTT. A figure counts only when the receiver holds every seq.

MQTT is measured in each payload mode of the sink, with writes of --mqtt-batch (2 000) records:
``json`` (one record per message) at each --inflight window, and ``json-batch`` (JSON arrays of
consecutive records, up to 500 per message, 20 in flight) on each --batch-topic: ``equipment`` (a
message per run of one equipment's records: 8, one counter's channels, in this backlog) and
``gateway`` (one ordered stream: four messages per write). The subscriber counts the records of an
array as a site's consumer would.

The raw loops send bytes prepared before the clock starts (the same batches, messages, topics and
in-flight window, built by the sinks' own code): they are the transport's ceiling on this run. The
gateway/raw ratio is what the forwarder's journal reads, JSON, late marks, topics and durable cursor
commits cost; it survives a noisy machine better than the rates do.

A stock mosquitto (set_tcp_nodelay false) lets Nagle hold its last acknowledgements of a batch until
the gateway's delayed ACK (about 40 ms): the sink waits for the whole batch to be acknowledged before
the next one starts, so each batch boundary stalls. The broker here runs with set_tcp_nodelay true, as
the MQTT sink's README asks of a site; --broker-stock shows the drain with the stall.

Beside this script: the backlog (drain_backlog.py), the receivers' processes (drain_receivers.py, with
the subscriber itself in drain_subscriber.py) and the figures' table (drain_report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import orjson

from gateway.journal import Journal
from gateway.sinks.base import Sink, SinkConfig, SinkContext, WireRecord
from gateway.sinks.forwarder import Forwarder
from gateway.sinks.http import HttpSink, HttpSinkConfig
from gateway.sinks.mqtt import MqttSink, MqttSinkConfig
from gateway.sinks.mqtt.messages import plan

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the drain helpers beside this script; the broker helper with the tests
from bench.drain_backlog import build_backlog, untrack, wire_records  # noqa: E402
from bench.drain_receivers import Subscriber, mes_state, process_cpu_s, start_mes, stop_process  # noqa: E402
from bench.drain_report import Figure, pairs, report, thousands  # noqa: E402
from tests.mosquitto import Mosquitto, mosquitto_binary  # noqa: E402

GATEWAY_ID = "gw-bench"


# -- one drain through the gateway -------------------------------------------------------------------


async def forward(journal: Journal, sink: Sink, config: SinkConfig, timeout_s: float,
                  profiler: cProfile.Profile | None) -> tuple[float, float, int]:
    """Drain the whole journal through a new cursor; (wall s, CPU s, failed writes)."""
    forwarder = Forwarder(sink, config, journal)
    if profiler is not None:
        profiler.enable()
    cpu0, t0 = time.process_time(), time.monotonic()
    run = asyncio.create_task(forwarder.run(), name=f"bench-forward-{config.name}")
    drained = asyncio.create_task(forwarder.drained(), name=f"bench-drained-{config.name}")
    done, _ = await asyncio.wait({run, drained}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    if profiler is not None:
        profiler.disable()
    for task in (run, drained):
        task.cancel()
    await asyncio.gather(run, drained, return_exceptions=True)
    if drained not in done:
        status = forwarder.status
        raise SystemExit(f"{config.name}: not drained within {timeout_s:.0f} s (cursor {status.cursor} of "
                         f"{journal.last_seq}): {status.last_error}")
    return wall, cpu, forwarder.status.failures


def print_profile(profiler: cProfile.Profile, title: str, lines: int = 22) -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    print(f"\n=== cProfile of the event-loop thread: {title} (sorted by own time) ===", file=sys.stderr)
    print("\n".join(out.getvalue().splitlines()[4:]), file=sys.stderr)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"gateway[/\\]sinks", lines)
    print("=== the same, the sink and forwarder functions only (sorted by time inside) ===", file=sys.stderr)
    print("\n".join(out.getvalue().splitlines()[4:]), file=sys.stderr)


# -- HTTP --------------------------------------------------------------------------------------------


def http_bodies(records: Sequence[WireRecord], size: int) -> list[tuple[str, bytes]]:
    """(Idempotency-Key, body) per batch, exactly as the HTTP sink builds them."""
    out = []
    for start in range(0, len(records), size):
        part = records[start:start + size]
        first, last = part[0]["seq"], part[-1]["seq"]
        body = {"gateway_id": GATEWAY_ID, "first_seq": first, "last_seq": last, "attempt": 1,
                "sent_at": datetime.now(UTC), "records": part}
        out.append((f"{GATEWAY_ID}:{first}-{last}", orjson.dumps(body, option=orjson.OPT_UTC_Z)))
    return out


async def raw_http(url: str, bodies: Sequence[tuple[str, bytes]]) -> tuple[float, float]:
    """aiohttp alone: one session, the prepared batches POSTed one after the other, each answer read."""
    cpu0, t0 = time.process_time(), time.monotonic()
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        for key, body in bodies:
            async with session.post(url, data=body, headers={"Idempotency-Key": key}) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"the MES stand-in answered {response.status} to the raw loop")
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    return wall, cpu


async def bench_http(journal: Journal, records: Sequence[WireRecord], sizes: Sequence[int], site_rate: int,
                     timeout_s: float, profile: bool) -> list[Figure]:
    figures, n = [], len(records)
    for size in sizes:
        bodies = http_bodies(records, size)
        untrack()
        for path in ("raw aiohttp loop", "gateway forwarder"):
            print(f"http: {path}, batches of {size} ...", file=sys.stderr)
            proc, ready = start_mes()
            profiler = cProfile.Profile() if profile and path.startswith("gateway") else None
            try:
                mes_cpu0 = process_cpu_s(proc.pid)
                failures = 0
                if path.startswith("raw"):
                    wall, cpu = await raw_http(ready["endpoint"], bodies)
                else:
                    config = HttpSinkConfig.model_validate({
                        "name": f"mes-{size}", "type": "http", "url": ready["endpoint"],
                        "batch": {"max_records": size, "max_age_s": 0.0},
                    })
                    sink = HttpSink(config, SinkContext(GATEWAY_ID))
                    wall, cpu, failures = await forward(journal, sink, config, timeout_s, profiler)
                mes_cpu = process_cpu_s(proc.pid) - mes_cpu0
                state = await mes_state(ready)
            finally:
                stop_process(proc)
            complete = state["stored"] == n and state["received"] - state["duplicates"] == n
            figures.append(Figure("http", path, f"batch {size}", n, wall, cpu, site_rate, complete,
                                  {"mes": mes_cpu}, failures=failures))
            if profiler is not None:
                print_profile(profiler, f"HTTP sink, batches of {size}")
    return figures


# -- MQTT --------------------------------------------------------------------------------------------


async def raw_mqtt(port: int, jobs: Sequence[tuple[str, bytes]], window: int) -> tuple[float, float]:
    """aiomqtt alone: the prepared payloads on their topics, QoS 1, at most ``window`` unacknowledged."""
    quiet = logging.getLogger("bench.drain.raw")
    quiet.setLevel(logging.ERROR)
    cpu0, t0 = time.process_time(), time.monotonic()
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"cgt-bench-raw-{window}",
                              max_inflight_messages=window, logger=quiet) as client:
        client.pending_calls_threshold = window + 10
        slots = asyncio.Semaphore(window)
        running: set[asyncio.Future[None]] = set()

        def finished(task: asyncio.Future[None]) -> None:
            running.discard(task)
            slots.release()

        for topic, payload in jobs:
            await slots.acquire()
            task = asyncio.ensure_future(client.publish(topic, payload, qos=1))
            running.add(task)
            task.add_done_callback(finished)
        await asyncio.gather(*running)  # raises on a failed publish: the figure would not count
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    return wall, cpu


def mqtt_modes(windows: Sequence[int], batch_topics: Sequence[str]) -> list[dict[str, Any]]:
    """The MQTT sink settings measured: one record per message at each window, then each json-batch topic."""
    modes: list[dict[str, Any]] = [{"payload": "json", "max_inflight": w} for w in windows]
    return modes + [{"payload": "json-batch", "batch_topic": t} for t in batch_topics]


def mqtt_setting(mode: dict[str, Any]) -> str:
    if mode["payload"] == "json":
        return f"json, {mode['max_inflight']} in flight"
    return f"json-batch {mode['batch_topic']}"


def mqtt_jobs(records: Sequence[WireRecord], config: MqttSinkConfig, batch: int) -> list[tuple[str, bytes]]:
    """(topic, payload) of every message, exactly as the sink publishes them for writes of ``batch`` records."""
    jobs = []
    for start in range(0, len(records), batch):
        messages, rejected = plan(records[start:start + batch], config, GATEWAY_ID)
        assert not rejected
        jobs += [(m.topic, m.payload) for m in messages]
    return jobs


async def bench_mqtt(journal: Journal, records: Sequence[WireRecord], modes: Sequence[dict[str, Any]], batch: int,
                     site_rate: int, timeout_s: float, profile: bool, nodelay: bool, workdir: Path) -> list[Figure]:
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("mosquitto is not installed: run `make system-deps` (or skip it with --only http)")
    broker = Mosquitto(workdir / "mosquitto", binary)
    if not nodelay:
        broker.conf.write_text(broker.conf.read_text().replace("set_tcp_nodelay true\n", ""))
    broker.start()
    subscriber: Subscriber | None = None
    figures, n = [], len(records)
    try:
        subscriber = Subscriber(broker.port)
        for number, mode in enumerate(modes):
            setting = mqtt_setting(mode)
            config = MqttSinkConfig.model_validate({
                "name": f"uns-{number}", "type": "mqtt", "host": "127.0.0.1", "port": broker.port,
                "batch": {"max_records": batch, "max_age_s": 0.0}, **mode,
            })
            jobs = mqtt_jobs(records, config, batch)
            untrack()
            for path in ("raw aiomqtt loop", "gateway forwarder"):
                print(f"mqtt: {path}, {setting} ({len(jobs)} messages) ...", file=sys.stderr)
                await asyncio.to_thread(subscriber.ask, "reset")
                assert broker.process is not None
                pids = {"broker": broker.process.pid, "subscriber": subscriber.proc.pid}
                before = {k: process_cpu_s(p) for k, p in pids.items()}
                profiler = cProfile.Profile() if profile and path.startswith("gateway") else None
                failures = 0
                t0 = time.monotonic()
                if path.startswith("raw"):
                    wall, cpu = await raw_mqtt(broker.port, jobs, config.max_inflight)
                else:
                    sink = MqttSink(config, SinkContext(GATEWAY_ID))
                    wall, cpu, failures = await forward(journal, sink, config, timeout_s, profiler)
                seen = await subscriber.wait_for(n, timeout_s=30)
                receiver = {k: process_cpu_s(p) - before[k] for k, p in pids.items()}
                figures.append(Figure("mqtt", path, setting, n, wall, cpu, site_rate,
                                      seen["distinct"] == n, receiver, seen["last_new"] - t0, failures))
                if profiler is not None:
                    print_profile(profiler, f"MQTT sink, {setting}")
            del jobs
    finally:
        if subscriber is not None:
            subscriber.stop()
        broker.stop()
    return figures


# -- main --------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> list[Figure]:
    path = workdir / "journal.sqlite"
    timeout_s = max(120.0, args.records / 500)
    async with Journal.open(path, gateway_id=GATEWAY_ID) as journal:
        print(f"building a backlog of {thousands(args.records)} records "
              f"({args.records / args.site_rate:g} s of a {thousands(args.site_rate)} records/s site) ...",
              file=sys.stderr)
        t0 = time.monotonic()
        await build_backlog(journal, args.records, args.site_rate)
        records = await asyncio.to_thread(wire_records, path)
        untrack()
        print(f"  built in {time.monotonic() - t0:.1f} s, {path.stat().st_size / 1e6:.0f} MB, "
              f"{len(orjson.dumps(records[0]))} bytes per wire record", file=sys.stderr)
        figures: list[Figure] = []
        if args.only in (None, "http"):
            figures += await bench_http(journal, records, args.batch, args.site_rate, timeout_s, args.profile)
        if args.only in (None, "mqtt"):
            modes = mqtt_modes(args.inflight, args.batch_topic)
            figures += await bench_mqtt(journal, records, modes, args.mqtt_batch, args.site_rate, timeout_s,
                                        args.profile, not args.broker_stock, workdir)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--records", type=int, default=200_000, help="records in the backlog (default 200 000)")
    p.add_argument("--site-rate", type=int, default=2000, help="records/s the site commits (tags x Hz; default 2000)")
    p.add_argument("--batch", type=int, nargs="+", default=[500, 2000], help="HTTP batch sizes (max_records)")
    p.add_argument("--inflight", type=int, nargs="*", default=[20, 100],
                   help="MQTT payload json: publishes in flight, one record per message (none: json-batch only)")
    p.add_argument("--batch-topic", nargs="*", choices=("equipment", "gateway"), default=["equipment", "gateway"],
                   help="MQTT payload json-batch: the batch topics measured (none: json only)")
    p.add_argument("--mqtt-batch", type=int, default=2000, help="records per write of the MQTT sink (default 2000)")
    p.add_argument("--broker-stock", action="store_true",
                   help="mosquitto with its shipped set_tcp_nodelay false (its acks may wait for Nagle)")
    p.add_argument("--only", choices=("http", "mqtt"), default=None, help="measure one sink only")
    p.add_argument("--quick", action="store_true", help="a backlog of 30 000 records (about a minute)")
    p.add_argument("--profile", action="store_true", help="cProfile each gateway drain; top costs to stderr")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.records = 30_000
    if args.records < 1 or args.site_rate < 1:
        p.error("--records and --site-rate must be at least 1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    from gateway import logs

    logs.configure("console", "warning")
    workdir = Path(tempfile.mkdtemp(prefix="cgt-bench-drain-"))
    try:
        print(f"{thousands(args.records)} records, site rate {thousands(args.site_rate)} records/s, "
              f"{os.cpu_count()} cores", file=sys.stderr)
        figures = asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        derived = {f"{gw.sink} {gw.setting}": {"rate_vs_raw": gw.rate / raw.rate,
                                               "cpu_per_record_vs_raw": gw.cpu_us_per_record / raw.cpu_us_per_record}
                   for raw, gw in pairs(figures)}
        print(json.dumps({"records": args.records, "site_rate": args.site_rate, "profiled": args.profile,
                          "broker_nodelay": not args.broker_stock, "mqtt_batch": args.mqtt_batch,
                          "figures": [f.as_dict() for f in figures], "derived": derived}, indent=2))
    else:
        report(figures, args.site_rate, args.profile, not args.broker_stock)
    return 0 if all(f.complete for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
