"""`FreezerSim`: a simulated controlled-rate freezer speaking the line protocol on a pty.

    async with FreezerSim(time_scale=600, seed=1, run_on_start={"lot": "LOT-1"}) as sim:
        ...open sim.serial_path with any serial client...
        sim.inject("ln2_empty")
        assert sim.state().run_id == "R0001"

``serial_path`` is a stable symlink to the pty's device end: a line drop (``disconnect``, a power loss
with ``drop_line``) removes the pty and ``restore()`` makes a new one behind the same path, like a
USB-serial adapter unplugged and plugged back. The constructor takes plain values only, so a demo can
build it from YAML. Everything it starts (the pty, the clock task, a scenario) is owned here.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from gateway.config import PROJECT_CONFIG_DIR

from ..lifecycle import Simulator
from ..scenario import parse_scenario, run_scenario
from .model import OUTCOME_STOPPED, FreezerModel, InvalidState, Physics, Profile, Run, Step, load_profile
from .ptylink import PtyLink
from .state import FreezerState, RunRecord
from .wire import FreezerClock, line, parse_command, sample_line

log = structlog.get_logger(__name__)

__all__ = ["FAULTS", "IDENTITY", "FreezerSim", "FreezerState", "PtyLink", "RunRecord"]

FAULTS = ("ln2_empty", "door_open", "thermocouple_open", "power_loss", "disconnect", "garbage", "corrupt_checksum",
          "clock_skew")
IDENTITY = ("cgt-gateway", "CRF-SIM 560", "SIM-0001", "1.0.0")


class FreezerSim(Simulator):
    """One simulated freezer. ``time_scale`` is simulated seconds per real second (600: an hour in 6 s)."""

    def __init__(
        self,
        profile: str = "classic-cell-therapy",
        time_scale: float = 1.0,
        sample_interval_s: float = 10.0,
        probes: int = 1,
        seed: int | None = None,
        serial_path: str | None = None,
        run_on_start: Mapping[str, Any] | bool | None = None,
        resume_max_s: float = 600.0,
        scenario: Sequence[Mapping[str, Any]] | None = None,
        skew_s: float = 0.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        if not 1 <= sample_interval_s <= 60:
            raise ValueError(f"sample_interval_s must be within 1..60 (simulated seconds), got {sample_interval_s}")
        path = Path(profile) if profile.endswith((".yaml", ".yml")) else (
            PROJECT_CONFIG_DIR / "freezing-profiles" / f"{profile}.yaml"
        )
        if not path.is_file():
            raise ValueError(f"freezing profile {profile!r} not found (looked for {path})")
        self.time_scale = float(time_scale)
        self.sample_interval_s = float(sample_interval_s)
        self.model = FreezerModel(load_profile(path), Physics(resume_max_s=resume_max_s),
                                  random.Random(seed), probes=probes)
        self.clock = FreezerClock(skew_s=float(skew_s))
        self._requested_path = serial_path
        self._workdir: str | None = None
        self._link: PtyLink | None = None
        self._link_down = False
        self._run_on_start = {} if run_on_start is True else (dict(run_on_start) if run_on_start else None)
        self._scenario = parse_scenario(scenario)
        self._tasks: list[asyncio.Task[None]] = []
        self._inbuf = bytearray()
        self._download: tuple[str, int, int, list[Step]] | None = None
        self._corrupt_left = 0
        self._garbage = False
        self._drop_line_on_power = False
        self._power_task: asyncio.Task[None] | None = None
        self._lines_sent = self._lines_lost = 0
        self._commands: list[str] = []
        self._runs: list[RunRecord] = []
        self._log = log.bind(sim="freezer")

    # -- endpoint ------------------------------------------------------------------------------
    @property
    def serial_path(self) -> str | None:
        """The path a client opens (a symlink to the current pty), once started."""
        return self._link.path if self._link is not None else None

    @property
    def endpoint(self) -> str | None:
        return self.serial_path

    host = None
    port = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("the simulator is already running")
        path = self._link_path()
        self._link = PtyLink(path)
        self._open_link()
        # power-on: the device clock starts from the wall clock now, and simulated time runs from this
        # moment, even if the event loop is busy before the clock task first runs
        origin = asyncio.get_running_loop().time()
        self.clock.epoch = datetime.now(UTC) - timedelta(seconds=self.model.time_s)
        if self._run_on_start is not None:
            self._start_run(self._run_on_start.get("lot"))
        self._tasks.append(asyncio.create_task(self._run_clock(origin), name="freezer-sim clock"))
        if self._scenario:
            self._tasks.append(asyncio.create_task(run_scenario(self, self._scenario), name="freezer-sim scenario"))
        self._log.info("simulator started", serial_path=path, time_scale=self.time_scale)

    def _link_path(self) -> str:
        """Where the client's symlink goes: the requested path (which must not exist) or a private temp dir."""
        if self._requested_path is None:
            self._workdir = tempfile.mkdtemp(prefix="freezer-sim-")
            return str(Path(self._workdir) / "ttyCRF")
        path = str(Path(self._requested_path).absolute())
        if os.path.lexists(path):
            raise ValueError(f"cannot create the pty link {path}: the path exists")
        return path

    async def stop(self) -> None:
        """Stop the clock and the scenario, remove the pty. Safe to call twice."""
        tasks = [t for t in (*self._tasks, self._power_task) if t is not None]
        self._tasks, self._power_task = [], None
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self._close_link()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise asyncio.CancelledError
        for result in results:
            if isinstance(result, Exception):
                raise result

    # -- operator actions ------------------------------------------------------------------------
    def start_run(self, lot: str | None = None) -> str:
        """Press start at the freezer (as the START command does); returns the run id."""
        return self._start_run(lot).run_id

    def stop_run(self) -> None:
        run = self.model.stop_run(OUTCOME_STOPPED)
        self._run_ended(run, OUTCOME_STOPPED)

    def download_profile(self, name: str, version: int, steps: Sequence[Mapping[str, Any]]) -> str:
        """Load a profile into the freezer (as PDL does); returns the checksum it will report."""
        profile = Profile(name, version, tuple(
            Step(s["type"], float(s["target_c"]), s.get("rate_c_per_min"), s.get("duration_min")) for s in steps
        ))
        self.model.load(profile)
        return profile.checksum

    # -- faults --------------------------------------------------------------------------------
    def inject(self, fault: str, *, unit_id: int | None = None, **params: float) -> None:
        """Start a fault. ``thermocouple_open`` takes ``probe`` (0 chamber, 1 or 2 sample; default 1);
        ``power_loss`` takes ``duration_s`` (simulated; absent: until restore) and ``drop_line`` (0/1);
        ``corrupt_checksum`` takes ``lines`` (default 1); ``clock_skew`` takes ``seconds``: the freezer's clock
        jumps to that far off (on top of ``skew_s``), until cleared."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; valid faults: {', '.join(FAULTS)}")
        f = self.model.faults
        if fault == "ln2_empty":
            f.ln2_empty = True
        elif fault == "door_open":
            f.door_open = True
        elif fault == "thermocouple_open":
            probe = int(params.get("probe", 1))
            if not 0 <= probe <= len(self.model.probes):
                raise ValueError(f"probe must be 0 (chamber) .. {len(self.model.probes)}, got {probe}")
            f.open_probes.add(probe)
        elif fault == "power_loss":
            self._power_off(params.get("duration_s"), bool(params.get("drop_line", 0)))
        elif fault == "disconnect":
            self._close_link()
        elif fault == "garbage":
            self._garbage = True
        elif fault == "corrupt_checksum":
            self._corrupt_left = int(params.get("lines", 1))
        elif fault == "clock_skew":
            self.clock.inject(float(params.get("seconds", 0.0)))
        self._log.info("fault injected", fault=fault, **params)

    def clear(self, fault: str) -> None:
        f = self.model.faults
        if fault == "ln2_empty":
            f.ln2_empty = False
        elif fault == "door_open":
            f.door_open = False
        elif fault == "thermocouple_open":
            f.open_probes.clear()
        elif fault == "power_loss":
            self._power_on()
        elif fault == "disconnect":
            self._open_link()
        elif fault == "clock_skew":
            self.clock.clear()
        else:
            raise ValueError(f"cannot clear {fault!r}; valid faults: {', '.join(FAULTS)}")

    async def restore(self) -> None:
        """End every fault: LN₂ back, door shut, probes mended, power on, the line plugged back in."""
        f = self.model.faults
        f.ln2_empty = f.door_open = False
        f.open_probes.clear()
        self._corrupt_left, self._garbage = 0, False
        self.clock.clear()
        if f.power_off:
            self._power_on()
        self._open_link()

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> FreezerState:
        m, f = self.model, self.model.faults
        active = [n for n, on in (("ln2_empty", f.ln2_empty), ("door_open", f.door_open),
                                  ("thermocouple_open", bool(f.open_probes)), ("power_loss", f.power_off),
                                  ("disconnect", self._link_down),
                                  ("clock_skew", self.clock.skewed)) if on]
        return FreezerState(
            time_s=m.time_s,
            run_id=m.run.run_id if m.run else None,
            step=m.run.step if m.run else 0,
            chamber_c=m.chamber,
            sample_c=tuple(p.temp for p in m.probes),
            set_point_c=m.set_point,
            valve_pct=m.valve_pct,
            profile=m.profile.name if m.profile else None,
            profile_checksum=m.profile.checksum if m.profile else None,
            faults_active=tuple(active),
            lines_sent=self._lines_sent,
            lines_lost=self._lines_lost,
            commands=tuple(self._commands),
            runs=tuple(self._runs),
            link_up=self._link is not None and self._link.master is not None,
            clock_skew_s=self.clock.offset_s,
        )

    # -- internals: the line -------------------------------------------------------------------
    def _open_link(self) -> None:
        link = self._link
        if link is None or link.master is not None:
            return
        link.open()
        self._link_down = False
        asyncio.get_running_loop().add_reader(link.master, self._on_readable)  # type: ignore[arg-type]

    def _close_link(self) -> None:
        link = self._link
        if link is None or link.master is None:
            return
        asyncio.get_running_loop().remove_reader(link.master)
        link.close()
        self._link_down = True
        self._inbuf.clear()

    def _send(self, data: bytes) -> None:
        """Write a line; with no line or no room in the pty it is lost, as on a wire nobody listens to."""
        link = self._link
        if self.model.faults.power_off or link is None or link.master is None:
            self._lines_lost += 1
            return
        try:
            written = os.write(link.master, data)
        except (BlockingIOError, OSError):
            self._lines_lost += 1
            return
        self._lines_sent += 1
        if written < len(data):
            self._lines_lost += 1

    def _on_readable(self) -> None:
        link = self._link
        if link is None or link.master is None:
            return
        try:
            data = os.read(link.master, 4096)
        except (BlockingIOError, OSError):
            return
        self._inbuf += data
        while (end := self._inbuf.find(b"\n")) >= 0:
            raw = bytes(self._inbuf[:end]).rstrip(b"\r")
            del self._inbuf[: end + 1]
            if not self.model.faults.power_off:
                self._command(raw)
        if len(self._inbuf) > 512:
            self._inbuf.clear()

    def _command(self, raw: bytes) -> None:
        fields = parse_command(raw)
        if fields is None:
            self._commands.append("?")
            return  # a line with a bad frame or CRC is ignored, as the freezer cannot know what it was
        cmd, args = fields[0], fields[1:]
        self._commands.append(cmd)
        m = self.model
        if cmd == "ID?":
            self._send(line("ID", *IDENTITY))
        elif cmd == "PRF?":
            self._send(self._profile_line())
        elif cmd == "RUN?":
            run = m.run
            if run is None or m.profile is None:
                self._send(line("RUN", "IDLE"))
            else:
                self._send(line("RUN", "ACTIVE", self.clock.stamp(run.started_at_s), run.run_id, m.profile.name,
                                m.profile.checksum, run.lot or "-"))
        elif cmd == "START":
            try:
                self._start_run(args[0] if args and args[0] else None, ack=True)
            except InvalidState as exc:
                self._send(line("NAK", "START", str(exc)))
        elif cmd == "STOP":
            if m.run is None:
                self._send(line("NAK", "STOP", "no run is going"))
            else:
                self._send(line("ACK", "STOP"))
                self.stop_run()
        elif cmd == "PDL":
            self._profile_download(args)
        elif cmd == "PST":
            self._profile_step(args)
        else:
            self._send(line("NAK", cmd if cmd.isalpha() and len(cmd) <= 8 else "ERR", "unknown command"))

    def _profile_download(self, args: list[str]) -> None:
        try:
            name, version, count = args[0], int(args[1]), int(args[2])
            if not name or not 1 <= count <= 99:
                raise ValueError
        except (IndexError, ValueError):
            self._send(line("NAK", "PDL", "expected PDL,name,version,steps"))
            return
        if self.model.run is not None:
            self._send(line("NAK", "PDL", "a run is going"))
            return
        self._download = (name, version, count, [])

    def _profile_step(self, args: list[str]) -> None:
        if self._download is None:
            self._send(line("NAK", "PST", "no download in progress"))
            return
        name, version, count, steps = self._download
        try:
            index, kind, target, extra = int(args[0]), args[1], float(args[2]), args[3]
            if index != len(steps) + 1 or kind not in ("H", "R"):
                raise ValueError
            if kind == "R":
                steps.append(Step("ramp", target, float(extra)))
            else:
                steps.append(Step("hold", target, None, None if extra == "-" else float(extra)))
        except (IndexError, ValueError):
            self._download = None
            self._send(line("NAK", "PDL", "bad step; download abandoned"))
            return
        if len(steps) == count:
            self._download = None
            self.model.load(Profile(name, version, tuple(steps)))
            self._send(line("ACK", "PDL"))
            self._send(self._profile_line())

    def _profile_line(self) -> bytes:
        p = self.model.profile
        if p is None:
            return line("PRF", "-")
        return line("PRF", p.name, str(p.version), p.checksum, str(len(p.steps)))

    # -- internals: runs and time --------------------------------------------------------------
    def _start_run(self, lot: str | None, *, ack: bool = False) -> Run:
        run = self.model.start_run(lot)
        profile = self.model.profile
        assert profile is not None
        if ack:
            self._send(line("ACK", "START"))
        self._send(line("RUN", "START", self.clock.stamp(run.started_at_s), run.run_id, profile.name,
                        profile.checksum, lot or "-"))
        self._log.info("run started", run_id=run.run_id, lot=lot)
        return run

    def _run_ended(self, run: Run, outcome: str) -> None:
        self._runs.append(RunRecord(run.run_id, run.lot, outcome, run.samples))
        self._send(line("RUN", "END", self.clock.stamp(self.model.time_s), run.run_id, outcome, str(run.samples)))
        self._log.info("run ended", run_id=run.run_id, outcome=outcome, samples=run.samples)

    def _power_off(self, duration_s: float | None, drop_line: bool) -> None:
        self.model.power(False)
        self._drop_line_on_power = drop_line
        if drop_line:
            self._close_link()
        if duration_s is not None:
            delay = float(duration_s) / self.time_scale
            self._power_task = asyncio.get_running_loop().create_task(self._power_back(delay))

    async def _power_back(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._power_task = None
        self._power_on()

    def _power_on(self) -> None:
        if not self.model.faults.power_off:
            return
        run = self.model.run
        outage, outcome = self.model.power(True)
        if self._drop_line_on_power:
            self._open_link()
        what = f"run {run.run_id} aborted" if run and outcome else (f"run {run.run_id} resumed" if run else "idle")
        self._send(line("EVT", self.clock.stamp(self.model.time_s), "POWER_RESTORED",
                        f"power back after {outage:.0f} s; {what}"))
        if run is not None and outcome is not None:
            self._run_ended(run, outcome)

    async def _run_clock(self, origin: float) -> None:
        """Advance the model in simulated time from ``origin`` (loop time) and log a sample every
        ``sample_interval_s``."""
        loop = asyncio.get_running_loop()
        # at most 0.1 s between wake-ups: a sample line leaves within 0.1 s of the time it carries, as a
        # freezer sends a sample when it takes it (the gateway compares the clocks on it)
        tick = min(max(self.sample_interval_s / self.time_scale, 0.005), 0.1)
        last = origin
        next_sample = self.model.time_s
        while True:
            now = loop.time()
            target = self.model.time_s + (now - last) * self.time_scale
            last = now
            while self.model.time_s < target - 1e-9:
                step = min(next_sample, target) - self.model.time_s
                for run, outcome in self.model.advance(max(step, 0.0)):
                    self._run_ended(run, outcome)
                if self.model.time_s >= next_sample - 1e-9:
                    self._sample()
                    next_sample += self.sample_interval_s
            await asyncio.sleep(tick)

    def _sample(self) -> None:
        if self.model.faults.power_off:
            return
        if self._garbage:
            self._garbage = False
            self._send(bytes(self.model.rng.randrange(256) for _ in range(40)) + b"\r\n")
        if self.model.run is not None:
            self.model.run.samples += 1
        corrupt = self._corrupt_left > 0
        self._corrupt_left -= 1 if corrupt else 0
        self._send(sample_line(self.model.reading(), self.clock, corrupt=corrupt))
