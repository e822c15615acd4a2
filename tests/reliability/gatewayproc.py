"""The gateway as a real process for the reliability tests: started through its command line, watched
through its journal file, killed with SIGKILL or stopped with SIGTERM, its JSON log lines read back.

Only processes started here are ever signalled, by PID. Every wait is bounded and fails fast, with the
tail of the gateway's log, when the process died underneath it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from device_sims.particle_counter import ParticleCounterSim
from gateway.journal import JournalReader
from gateway.records import ProcessRecord
from tests.mosquitto import Mosquitto
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


# -- site files -------------------------------------------------------------------------------------


def counter(eq_id: str, port: int, *, poll_s: float = 0.05, timeout_s: float | None = None) -> str:
    """A Lighthouse counter on Modbus TCP at 127.0.0.1:``port`` (one ``equipment:`` entry)."""
    timeout = f", timeout_s: {timeout_s}, retries: 0" if timeout_s is not None else ""
    return (
        f"  - {{id: {eq_id}, class: particle_counter, kind: modbus, transport: tcp, host: 127.0.0.1,"
        f" port: {port}, device_id: 1, register_map: lighthouse-remote, poll_interval_s: {poll_s}{timeout}}}\n"
    )


def http_sink(endpoint: str, name: str = "mes") -> str:
    """The HTTP sink to an MES (stand-in) records endpoint, with short retries for a test's time scale."""
    return (
        f"  - {{name: {name}, type: http, url: '{endpoint}', timeout_s: 2, late_after_s: 1,\n"
        "     batch: {max_records: 300, max_age_s: 0.05}, retry: {initial_s: 0.05, max_s: 0.3}}\n"
    )


def mqtt_sink(broker: Mosquitto, name: str = "uns") -> str:
    """The MQTT sink to a test broker, with short retries for a test's time scale."""
    return (
        f"  - {{name: {name}, type: mqtt, host: {broker.host}, port: {broker.port}, connect_timeout_s: 2,\n"
        "     publish_timeout_s: 3, batch: {max_records: 300, max_age_s: 0.05}, retry: {initial_s: 0.05, max_s: 0.3}}\n"
    )


def write_site(
    folder: Path,
    gateway_id: str,
    equipment: Sequence[str],
    sinks: Sequence[str] = (),
    *,
    journal: str = "journal.sqlite",
    journal_options: str = "",
    drain_on_stop_s: float = 30,
    api: bool = False,
) -> Path:
    """``folder/site.yaml`` for a gateway reading ``equipment`` and feeding ``sinks``; its path.

    ``api`` serves the operator API on a free loopback port (:meth:`GatewayProcess.health` reads it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "site.yaml"
    path.write_text(
        f"gateway: {{id: {gateway_id}, drain_on_stop_s: {drain_on_stop_s}}}\n"
        f"journal: {{path: '{journal}'{', ' + journal_options if journal_options else ''}}}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.3}\n"
        + ("api: {listen: '127.0.0.1:0'}\n" if api else "")
        + f"equipment:\n{''.join(equipment)}"
        + (f"sinks:\n{''.join(sinks)}" if sinks else "")
    )
    return path


# -- the command line -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


async def cli(*args: str, timeout_s: float = 30) -> Done:
    """``cgt-gateway ARGS`` as a user runs it; the exit code and both outputs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise AssertionError(f"cgt-gateway {' '.join(args)} did not finish within {timeout_s} s") from None
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def verify_ok(site: Path) -> str:
    """``cgt-gateway verify -c SITE`` must pass; its one-line summary."""
    done = await cli("verify", "-c", str(site))
    assert done.returncode == 0, f"verify failed: {done.stdout.strip()} {done.stderr.strip()}"
    return done.stdout.strip()


async def sink_status(site: Path) -> dict[str, dict[str, Any]]:
    """``cgt-gateway sinks -c SITE --json`` by sink name: cursor, backlog, its age, dead letters."""
    done = await cli("sinks", "-c", str(site), "--json")
    assert done.returncode == 0, done.stderr
    return {s["name"]: s for s in orjson.loads(done.stdout)["sinks"]}


# -- the journal, read as a sink or a reviewer would ------------------------------------------------


def last_seq(journal: Path) -> int:
    """The last committed seq (0 before the journal exists)."""
    if not journal.exists():
        return 0
    with JournalReader(journal) as reader:
        return reader.last_seq()


def cursors(journal: Path) -> dict[str, int]:
    with JournalReader(journal) as reader:
        return reader.cursors()


def records(journal: Path, equipment_id: str | None = None) -> list[ProcessRecord]:
    """Every committed record (of one piece of equipment), in seq order."""
    with JournalReader(journal) as reader:
        return list(reader.read(equipment_id=equipment_id))


def of_parameter(journal: Path, parameter: str, equipment_id: str, since_seq: int = 0) -> list[ProcessRecord]:
    """One parameter's records of one device, by index: cheap enough to poll while the gateway runs."""
    with JournalReader(journal) as reader:
        return [r for r in reader.of_parameter(parameter, since_seq) if r.equipment_id == equipment_id]


def events(journal: Path, equipment_id: str) -> list[str]:
    """One device's communication events so far (lost / restored / refused), in order."""
    return communication_events(of_parameter(journal, "communication", equipment_id))


def hashes(journal: Path) -> dict[int, str]:
    """seq → hash of every committed record."""
    with JournalReader(journal) as reader:
        return {seq: h for seq, _, _, h in reader.rows(raw=False)}


def assert_unchanged(journal: Path, kept: dict[int, str], what: str = "a committed record changed") -> None:
    """Every record in ``kept`` (seq → hash, from :func:`hashes` earlier) is still there with the same hash:
    what a crash or a full disk must never do is rewrite what was committed."""
    now = hashes(journal)
    changed = sorted(seq for seq, h in kept.items() if now.get(seq) != h)
    assert not changed, f"{what}: seqs {changed[:5]} (of {len(kept)} kept)"


def assert_gap_free(journal: Path) -> int:
    """Seqs 1…last without a gap or a repeat; returns last."""
    with JournalReader(journal) as reader:
        seqs = [seq for seq, *_ in reader.rows(raw=False)]
    assert seqs == list(range(1, len(seqs) + 1)), f"seq is not gap-free: {_first_break(seqs)}"
    return len(seqs)


def _first_break(seqs: list[int]) -> str:
    for i, seq in enumerate(seqs, start=1):
        if seq != i:
            return f"position {i} holds seq {seq}"
    return "no break"


def script_counts(sim: ParticleCounterSim, samples: int) -> None:
    """Make the counter count 1, 2, 3… (one value per sample, every channel): a stream whose gaps and
    repeats show, whatever reaches the journal. ``samples`` should outlast the test."""
    sim.inject("scripted_counts", values=list(range(1, samples + 1)))


def counts_of(records: Iterable[ProcessRecord], parameter: str = "particle_count_0_5um") -> list[int]:
    """The values of one parameter's Good records, in seq order (scripted counts come out 1, 2, 3…)."""
    return [r.value for r in records if r.parameter == parameter and r.quality == "Good"]  # type: ignore[misc]


def assert_consecutive(values: list[int], what: str) -> None:
    """A scripted count stream: each value one more than the one before (no gap, no repeat)."""
    assert values, f"{what}: no values"
    breaks = [(a, b) for a, b in itertools.pairwise(values) if b != a + 1]
    assert not breaks, f"{what}: the stream breaks at {breaks[:5]} (of {len(values)} values from {values[0]})"


def communication_events(records: Iterable[ProcessRecord]) -> list[str]:
    """The device's communication events (lost / restored / refused) in order."""
    return [str(r.value) for r in records if r.kind == "event" and r.parameter == "communication"]


# -- the gateway process ----------------------------------------------------------------------------


class GatewayProcess:
    """``cgt-gateway --log-format json run -c SITE``, restartable: each run logs to its own file.

    ``journal`` is the site's journal file, read for progress; ``runs`` counts the starts.
    """

    def __init__(self, site: Path, journal: Path, *, env: dict[str, str] | None = None) -> None:
        self.site = site
        self.journal = journal
        self.env = {**os.environ, **env} if env else None  # extra environment for the process
        self.runs = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._logs: list[Path] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the gateway was not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, *, wait_open: bool = True) -> None:
        """Start a run; with ``wait_open``, return once it has opened its journal (it logs so)."""
        assert not self.running, "the gateway is already running"
        self.runs += 1
        log_path = self.site.parent / f"gateway-run-{self.runs}.log"
        self._logs.append(log_path)
        with log_path.open("wb") as log_file:  # the child keeps its own copy of the descriptor
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "--log-format", "json", "run", "-c", str(self.site),
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log_file, env=self.env,
            )  # fmt: skip
        if wait_open:
            run = self.runs

            def opened() -> bool:
                self.alive()
                return any(e.get("event") == "journal opened" for e in self.log_events(run))

            await eventually(opened, timeout_s=30, what="the gateway to open its journal")

    async def kill9(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        assert self.proc is not None
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)
        assert self.proc.returncode == -signal.SIGKILL, f"the gateway had exited already ({self.proc.returncode})"

    async def stop(self, timeout_s: float = 45) -> int:
        """SIGTERM (a clean stop: devices, then the sinks' drain, then the journal); the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return await self.wait_exit(timeout_s)

    async def wait_exit(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"the gateway did not exit within {timeout_s} s\n{self.log_tail()}") from None

    async def close(self) -> None:
        """Whatever happened: no gateway process of ours is left running."""
        if self.running:
            await self.kill9()

    def alive(self) -> bool:
        """True while running; an AssertionError with the log's tail once it has died."""
        if not self.running:
            assert self.proc is not None
            raise AssertionError(f"the gateway exited with {self.proc.returncode}\n{self.log_tail()}")
        return True

    async def wait_for_seq(self, seq: int, timeout_s: float = 30) -> int:
        """Wait (bounded) until the journal has committed ``seq``; the last seq then."""

        def reached() -> int:
            self.alive()
            last = last_seq(self.journal)
            return last if last >= seq else 0

        return await eventually(reached, timeout_s=timeout_s, what=f"seq {seq} committed")

    # -- its logs -----------------------------------------------------------------------------------

    def log_lines(self, run: int | None = None) -> list[str]:
        """stderr lines of every run (or of run ``run``, 1-based)."""
        paths = self._logs if run is None else [self._logs[run - 1]]
        return [line for p in paths if p.exists() for line in p.read_text(errors="replace").splitlines()]

    def log_events(self, run: int | None = None) -> list[dict[str, Any]]:
        """The JSON log lines (structlog events); other lines (a last error line) are left out."""
        events = []
        for line in self.log_lines(run):
            if line.startswith("{"):
                try:
                    events.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return events

    def plain_lines(self, run: int | None = None) -> list[str]:
        """stderr lines that are not structlog JSON: what a person reads as the gateway's last word."""
        return [line for line in self.log_lines(run) if line.strip() and not line.startswith("{")]

    async def health(self) -> dict[str, Any]:
        """The running gateway's ``/healthz`` (its site has ``api``): status and devices up / down."""
        urls = [e["url"] for e in self.log_events(self.runs) if e.get("event") == "operator API listening"]
        assert urls, "the gateway serves no operator API (write_site(..., api=True))"
        async with aiohttp.ClientSession() as session, session.get(f"{urls[-1]}/healthz") as answer:
            assert answer.status == 200, await answer.text()
            return await answer.json()  # type: ignore[no-any-return]

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_lines()[-lines:])


def proc_counts(pid: int) -> tuple[int, int]:
    """(open file descriptors, threads) of a running process, from /proc: a leak grows them."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = next(
        int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )  # fmt: skip
    return fds, threads
