"""Drain benchmark: how fast a backlog of committed records leaves through the HTTP and MQTT sinks,
beside the raw aiohttp and aiomqtt loops sending the same bytes to the same receivers on the same run.

    python bench/drain.py --quick            # 30 000 records (about a minute)
    python bench/drain.py                    # 200 000 records: 100 s of a 2 000 records/s site
    python bench/drain.py --only mqtt --json # one sink, the figures as JSON
    python bench/drain.py --quick --profile  # also the top costs of each gateway drain (cProfile, to stderr)
    python bench/drain.py --only mqtt --broker-stock     # mosquitto's shipped set_tcp_nodelay false

The project's bar: a one-hour backlog drains at >= 20x real time, where "x real time" is records/s
divided by the site's rate (--site-rate: 2 000 tags at 1 Hz by default). The backlog is a real journal
of particle-counter readings whose gateway_time advances at the site rate; each measurement drains all
of it through a fresh cursor. The receivers run in their own processes, so the CPU figures are the
gateway's: a fresh MES stand-in per HTTP measurement (it keeps one copy per seq and checks each hash),
one mosquitto (the tests' site-like config) and one subscriber (persistent session, QoS 1, counting
distinct (gateway_id, seq)) for MQTT. A figure counts only when the receiver holds every seq.

The raw loops send bytes prepared before the clock starts (the same batches, topics and in-flight
window): they are the transport's ceiling on this run. The gateway/raw ratio is what the forwarder's
journal reads, JSON, late marks and durable cursor commits cost; it survives a noisy machine.

A stock mosquitto (set_tcp_nodelay false) lets Nagle hold its last acknowledgements of a batch until
the gateway's delayed ACK (about 40 ms): the sink waits for the whole batch to be acknowledged before
the next one starts, so each batch boundary stalls. The broker here runs with set_tcp_nodelay true, as
the MQTT sink's README asks of a site; --broker-stock shows the drain with the stall.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import orjson

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.sinks.base import Sink, SinkConfig, SinkContext, WireRecord
from gateway.sinks.forwarder import Forwarder
from gateway.sinks.http import HttpSink, HttpSinkConfig
from gateway.sinks.mqtt import MqttSink, MqttSinkConfig, record_topic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the broker helper lives with the tests: one site-like config for both
from tests.mosquitto import Mosquitto, mosquitto_binary  # noqa: E402

GATEWAY_ID = "gw-bench"
EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
CHANNELS = (
    ("particles_0_3um", "/m3"), ("particles_0_5um", "/m3"), ("particles_1_0um", "/m3"),
    ("particles_3_0um", "/m3"), ("particles_5_0um", "/m3"), ("particles_10_0um", "/m3"),
    ("sample_flow", "[ft_i]3/min"), ("laser_current", "mA"),
)
CHUNK = 2000


@dataclass
class Figure:
    sink: str
    path: str
    setting: str
    records: int
    wall_s: float
    cpu_s: float
    site_rate: float
    #: The receiver holds every seq of the backlog (and nothing else).
    complete: bool
    receiver_cpu_s: dict[str, float] = field(default_factory=dict)
    #: MQTT: seconds from the start until the subscriber had the last record.
    end_to_end_s: float | None = None
    failures: int = 0

    @property
    def rate(self) -> float:
        return self.records / self.wall_s

    @property
    def x_real_time(self) -> float:
        return self.rate / self.site_rate

    @property
    def cpu_us_per_record(self) -> float:
        return 1e6 * self.cpu_s / self.records

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"records_per_s": self.rate, "x_real_time": self.x_real_time,
                               "cpu_us_per_record": self.cpu_us_per_record}


# -- the backlog -------------------------------------------------------------------------------------


def draft(i: int, site_rate: int) -> RecordDraft:
    """Reading ``i`` of a site of ``site_rate`` tags at 1 Hz: 8 channels per particle counter."""
    tag = i % site_rate
    counter, channel = divmod(tag, len(CHANNELS))
    parameter, unit = CHANNELS[channel]
    at = EPOCH + timedelta(seconds=i / site_rate)
    return RecordDraft(
        equipment_id=f"PC-{counter:04d}",
        equipment_class="particle_counter",
        isa95=Isa95Path(site="plant-1", area=f"grade-{'bcd'[counter % 3]}", unit=f"suite-{counter % 12 + 1}"),
        parameter=parameter,
        source=f"modbus+tcp://10.0.{counter // 200}.{counter % 200 + 10}:502/1/input/{30001 + 2 * channel}",
        kind=Kind.MEASUREMENT,
        value=float(1000 + i % 7919),
        unit=unit,
        quality=Quality.GOOD,
        source_time=at - timedelta(milliseconds=3),
        gateway_time=at,
        lot_id="LOT-0001",
        config_hash="ab" * 32,
    )


def frame(i: int) -> bytes:
    """A Modbus TCP answer of the size a counter's register read has."""
    return struct.pack(">HHHBBBI", i & 0xFFFF, 0, 7, 1, 4, 4, i & 0xFFFFFFFF)


async def build_backlog(journal: Journal, n: int, site_rate: int) -> None:
    for start in range(0, n, CHUNK):
        await journal.append([(draft(i, site_rate), frame(i)) for i in range(start, min(n, start + CHUNK))])


def wire_records(path: Path) -> list[WireRecord]:
    """The backlog exactly as the forwarder hands it to a sink (every record late: it is a backlog)."""
    with JournalReader(path) as reader:
        return [orjson.loads(p) | {"hash": h, "delivery": {"late": True}} for _, p, _, h in reader.rows(raw=False)]


def untrack() -> None:
    """Keep the prepared backlog out of the garbage collector: a gateway holds one batch, not the whole
    backlog, and full collections over a million bench-held objects would be charged to both loops."""
    gc.collect()
    gc.freeze()


# -- processes ---------------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc), 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the process this bench started, then SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


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


async def mes_state(ready: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{ready['port']}/_state") as r:
        return dict(await r.json())


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


async def bench_mqtt(journal: Journal, records: Sequence[WireRecord], windows: Sequence[int], batch: int,
                     site_rate: int, timeout_s: float, profile: bool, nodelay: bool, workdir: Path) -> list[Figure]:
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("mosquitto is not installed: run `make system-deps` (or skip it with --only http)")
    jobs = [(record_topic("cgt", r), orjson.dumps(r)) for r in records]
    untrack()
    broker = Mosquitto(workdir / "mosquitto", binary)
    if not nodelay:
        broker.conf.write_text(broker.conf.read_text().replace("set_tcp_nodelay true\n", ""))
    broker.start()
    subscriber: Subscriber | None = None
    figures, n = [], len(records)
    try:
        subscriber = Subscriber(broker.port)
        for window in windows:
            for path in ("raw aiomqtt loop", "gateway forwarder"):
                print(f"mqtt: {path}, {window} in flight ...", file=sys.stderr)
                await asyncio.to_thread(subscriber.ask, "reset")
                assert broker.process is not None
                pids = {"broker": broker.process.pid, "subscriber": subscriber.proc.pid}
                before = {k: process_cpu_s(p) for k, p in pids.items()}
                profiler = cProfile.Profile() if profile and path.startswith("gateway") else None
                failures = 0
                t0 = time.monotonic()
                if path.startswith("raw"):
                    wall, cpu = await raw_mqtt(broker.port, jobs, window)
                else:
                    config = MqttSinkConfig.model_validate({
                        "name": f"uns-{window}", "type": "mqtt", "host": "127.0.0.1", "port": broker.port,
                        "max_inflight": window, "batch": {"max_records": batch, "max_age_s": 0.0},
                    })
                    sink = MqttSink(config, SinkContext(GATEWAY_ID, "plant-1"))
                    wall, cpu, failures = await forward(journal, sink, config, timeout_s, profiler)
                seen = await subscriber.wait_for(n, timeout_s=30)
                receiver = {k: process_cpu_s(p) - before[k] for k, p in pids.items()}
                figures.append(Figure("mqtt", path, f"in flight {window}", n, wall, cpu, site_rate,
                                      seen["distinct"] == n, receiver, seen["last_new"] - t0, failures))
                if profiler is not None:
                    print_profile(profiler, f"MQTT sink, {window} in flight")
    finally:
        if subscriber is not None:
            subscriber.stop()
        broker.stop()
    return figures


# -- report ------------------------------------------------------------------------------------------


def thousands(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def report(figures: Sequence[Figure], site_rate: int, profiled: bool, nodelay: bool) -> None:
    print(f"\n{'sink':<5} {'path':<18} {'setting':<13} {'records/s':>10} {'x real':>7} {'wall s':>7} "
          f"{'CPU s':>6} {'CPU %':>6} {'us/rec':>7}  receiver CPU, checks")
    for f in figures:
        receiver = ", ".join(f"{k} {v:.1f} s" for k, v in f.receiver_cpu_s.items())
        checks = "every seq received" if f.complete else "RECORDS MISSING: figure does not count"
        if f.end_to_end_s is not None:
            checks += f", subscriber had all after {f.end_to_end_s:.1f} s"
        if f.failures:
            checks += f", {f.failures} failed writes"
        print(f"{f.sink:<5} {f.path:<18} {f.setting:<13} {thousands(f.rate):>10} {f.x_real_time:>6.1f}x "
              f"{f.wall_s:>7.2f} {f.cpu_s:>6.2f} {100 * f.cpu_s / f.wall_s:>5.0f}% {f.cpu_us_per_record:>7.1f}  "
              f"{receiver}; {checks}")
    print()
    for raw, gw in pairs(figures):
        print(f"{gw.sink} {gw.setting:<13} gateway / raw loop  rate {gw.rate / raw.rate:.2f}   "
              f"CPU per record {gw.cpu_us_per_record:.1f} us vs {raw.cpu_us_per_record:.1f} us "
              f"({gw.cpu_us_per_record / raw.cpu_us_per_record:.1f}x)")
    print()
    for sink in ("http", "mqtt"):
        done = [f for f in figures if f.sink == sink and f.path.startswith("gateway") and f.complete]
        if not done:
            continue
        best = max(done, key=lambda f: f.rate)
        minutes = 3600 * site_rate / best.rate / 60
        print(f"{sink}: one hour of a {thousands(site_rate)} records/s site drains in {minutes:.1f} min "
              f"({best.x_real_time:.1f}x real time, {best.setting}; bar >= 20x)")
    if any(f.sink == "mqtt" for f in figures):
        setting = "true, as a site should" if nodelay else "false, as shipped"
        print(f"(mosquitto set_tcp_nodelay {setting}; see --broker-stock)")
    if profiled:
        print("(profiled run: the gateway rates are lowered by the profiler; measure without --profile)")


def pairs(figures: Sequence[Figure]) -> list[tuple[Figure, Figure]]:
    raw = {(f.sink, f.setting): f for f in figures if f.path.startswith("raw")}
    return [(raw[(f.sink, f.setting)], f) for f in figures
            if f.path.startswith("gateway") and (f.sink, f.setting) in raw]


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
            figures += await bench_mqtt(journal, records, args.inflight, args.mqtt_batch, args.site_rate, timeout_s,
                                        args.profile, not args.broker_stock, workdir)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--records", type=int, default=200_000, help="records in the backlog (default 200 000)")
    p.add_argument("--site-rate", type=int, default=2000, help="records/s the site commits (tags x Hz; default 2000)")
    p.add_argument("--batch", type=int, nargs="+", default=[500, 2000], help="HTTP batch sizes (max_records)")
    p.add_argument("--inflight", type=int, nargs="+", default=[20, 100], help="MQTT publishes in flight")
    p.add_argument("--mqtt-batch", type=int, default=500, help="records per write of the MQTT sink (default 500)")
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
