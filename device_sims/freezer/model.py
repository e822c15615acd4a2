"""The freezer's physics and controller, pure: advanced in simulated seconds, no I/O, no clock of its own.

Chamber: an LN₂ valve cools it (up to ``cool_max_c_per_min`` at 100 %), a heater warms it (for the
compensation warm-back), the room leaks in through the walls, much more with the door open. The
controller aims the chamber at the profile's set point with feed-forward of the ramp rate plus a
proportional term, so a healthy freezer follows the profile within a few tenths of a degree.

Sample probes: first-order lags behind the chamber (τ a few minutes for a bag). At the nucleation
temperature the sample releases its supercooling: it jumps up towards the equilibrium freezing point
(the exotherm) and sits there while its latent heat is drawn off, then follows the chamber again.

Faults change the physics, not the reporting: LN₂ empty removes the cooling (the valve demand goes
to 100 % and the chamber drifts off the profile), an open door lets the room in, an open thermocouple
makes a probe read ``OPEN``, a power loss stops the controller and the profile clock.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

OUTCOME_COMPLETE = "COMPLETE"
OUTCOME_STOPPED = "STOPPED"
OUTCOME_POWERFAIL = "POWERFAIL"

#: Alarm bits of the sample line (the protocol's table, written out again here on purpose).
ALARM_LN2 = 0x01
ALARM_DOOR = 0x02
ALARM_CHAMBER_PROBE = 0x04
ALARM_SAMPLE_PROBE = 0x08
ALARM_DEVIATION = 0x10
ALARM_POWER_FAIL = 0x20


class InvalidState(ValueError):
    """A command the freezer refuses in its current state (the reason goes into a NAK)."""


@dataclass(frozen=True)
class Step:
    type: str  # "hold" | "ramp"
    target_c: float
    rate_c_per_min: float | None = None
    duration_min: float | None = None

    def token(self) -> str:
        if self.type == "ramp":
            return f"R,{self.target_c:.1f},{self.rate_c_per_min:.2f}"
        return f"H,{self.target_c:.1f},{'-' if self.duration_min is None else f'{self.duration_min:.1f}'}"


@dataclass(frozen=True)
class Profile:
    """A profile as the freezer holds it: name, version, steps, and the checksum it reports."""

    name: str
    version: int
    steps: tuple[Step, ...]

    @property
    def checksum(self) -> str:
        """CRC-32 of ``name;version;step;step...`` (see the adapter README), 8 uppercase hex digits."""
        text = ";".join([self.name, str(self.version), *(s.token() for s in self.steps)])
        return f"{zlib.crc32(text.encode('ascii')):08X}"


def load_profile(path: Path) -> Profile:
    """A profile file (``config/freezing-profiles/*.yaml``): only name, version and steps matter here."""
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        steps = tuple(
            Step(s["type"], float(s["target_c"]), _opt(s.get("rate_c_per_min")), _opt(s.get("duration_min")))
            for s in data["steps"]
        )
        return Profile(str(data["name"]), int(data["version"]), steps)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a freezing profile ({exc!r})") from None


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class Physics:
    """Numbers of the simulated freezer and load; defaults model a 20-70 mL bag with 10 % DMSO [A]."""

    ambient_c: float = 20.0
    idle_set_point_c: float = 4.0
    sample_start_c: float = 8.0
    sample_tau_min: tuple[float, ...] = (4.0, 5.5)
    cool_max_c_per_min: float = 40.0
    heat_max_c_per_min: float = 15.0
    leak_per_min: float = 0.01
    door_leak_per_min: float = 0.8
    control_tau_min: float = 0.5
    nucleation_c: float = -7.0
    freezing_point_c: float = -2.5
    exotherm_jump_c: float = 4.0
    latent_budget_c_min: float = 12.0
    noise_c: float = 0.03
    device_deviation_c: float = 5.0
    #: A power loss shorter than this (simulated seconds) resumes the run; a longer one aborts it.
    resume_max_s: float = 600.0


@dataclass
class _Probe:
    temp: float
    tau_min: float
    nucleation_c: float
    frozen: bool = False
    latent_left: float = 0.0


@dataclass
class Run:
    run_id: str
    lot: str | None
    started_at_s: float
    step: int = 1
    step_elapsed_s: float = 0.0
    samples: int = 0
    power_failed: bool = False


@dataclass
class Faults:
    ln2_empty: bool = False
    door_open: bool = False
    open_probes: set[int] = field(default_factory=set)  # 0 chamber, 1.. sample probes
    power_off: bool = False
    power_off_s: float = 0.0


@dataclass(frozen=True)
class Reading:
    """What the freezer would log now."""

    time_s: float
    run_id: str | None
    step: int
    step_type: str  # I H R
    step_elapsed_s: int
    set_point: float
    chamber: float | None
    probes: tuple[float | None, ...]
    valve_pct: float
    alarms: int


class FreezerModel:
    """One freezer in simulated time ``time_s`` (seconds since power-on)."""

    def __init__(self, profile: Profile, physics: Physics, rng: random.Random, probes: int = 1) -> None:
        if not 1 <= probes <= 2:
            raise ValueError(f"probes must be 1 or 2, got {probes}")
        self.profile: Profile | None = profile
        self.physics = physics
        self.rng = rng
        self.time_s = 0.0
        self.chamber = physics.idle_set_point_c
        self.set_point = physics.idle_set_point_c
        self.valve_pct = 0.0
        self.probes = [
            _Probe(physics.sample_start_c, physics.sample_tau_min[min(i, len(physics.sample_tau_min) - 1)],
                   physics.nucleation_c + rng.uniform(-0.5, 0.5))
            for i in range(probes)
        ]
        self.run: Run | None = None
        self.runs_started = 0
        self.faults = Faults()
        self.finished: list[tuple[Run, str]] = []

    # -- commands ---------------------------------------------------------------------------------
    def start_run(self, lot: str | None = None) -> Run:
        if self.faults.power_off:
            raise InvalidState("no power")
        if self.run is not None:
            raise InvalidState(f"run {self.run.run_id} is going")
        if self.profile is None:
            raise InvalidState("no profile loaded")
        self.runs_started += 1
        self.run = Run(f"R{self.runs_started:04d}", lot, self.time_s)
        for probe in self.probes:  # a new bag in the chamber
            probe.temp, probe.frozen, probe.latent_left = self.physics.sample_start_c, False, 0.0
        return self.run

    def stop_run(self, outcome: str = OUTCOME_STOPPED) -> Run:
        run = self.run
        if run is None:
            raise InvalidState("no run is going")
        self.run = None
        self.finished.append((run, outcome))
        return run

    def load(self, profile: Profile) -> None:
        if self.run is not None:
            raise InvalidState(f"run {self.run.run_id} is going")
        self.profile = profile

    # -- time -------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> list[tuple[Run, str]]:
        """Move on ``seconds`` of simulated time; returns the runs that ended, with their outcome."""
        ended: list[tuple[Run, str]] = []
        while seconds > 1e-9:
            dt = min(seconds, 1.0)
            seconds -= dt
            self.time_s += dt
            if self.faults.power_off:
                self.faults.power_off_s += dt
                self._physics(dt, control=False)
                continue
            outcome = self._profile_clock(dt)
            self._physics(dt, control=True)
            if outcome is not None and self.run is not None:
                ended.append((self.stop_run(outcome), outcome))
        return ended

    def power(self, on: bool) -> tuple[float, str | None]:
        """Switch power; on return, (outage seconds, outcome of the run if it was aborted, else None)."""
        if not on:
            self.faults.power_off, self.faults.power_off_s = True, 0.0
            if self.run is not None:
                self.run.power_failed = True
            self.valve_pct = 0.0
            return 0.0, None
        outage, self.faults.power_off = self.faults.power_off_s, False
        if self.run is not None and outage > self.physics.resume_max_s:
            self.stop_run(OUTCOME_POWERFAIL)
            return outage, OUTCOME_POWERFAIL
        return outage, None

    def _profile_clock(self, dt: float) -> str | None:
        """Advance the run's step clock and set point; the outcome when the last step has ended."""
        run, profile = self.run, self.profile
        if run is None or profile is None:
            return None
        run.step_elapsed_s += dt
        while True:
            step = profile.steps[run.step - 1]
            start = profile.steps[run.step - 2].target_c if run.step > 1 else step.target_c
            if step.type == "ramp":
                rate = step.rate_c_per_min or 1.0
                length_s = abs(step.target_c - start) / rate * 60.0
                direction = -1.0 if step.target_c < start else 1.0
                self.set_point = start + direction * rate * min(run.step_elapsed_s, length_s) / 60.0
                done = run.step_elapsed_s >= length_s
            else:
                self.set_point = step.target_c
                if step.duration_min is None:  # until the sample has reached the hold temperature
                    length_s = run.step_elapsed_s
                    done = all(abs(p.temp - step.target_c) < 0.5 for p in self.probes)
                else:
                    length_s = step.duration_min * 60.0
                    done = run.step_elapsed_s >= length_s
            if not done:
                return None
            if run.step == len(profile.steps):
                self.set_point = step.target_c
                return OUTCOME_COMPLETE
            run.step_elapsed_s -= length_s
            run.step += 1

    def _physics(self, dt: float, *, control: bool) -> None:
        p, f = self.physics, self.faults
        minutes = dt / 60.0
        leak = (p.door_leak_per_min if f.door_open else p.leak_per_min) * (p.ambient_c - self.chamber)
        cool = heat = 0.0
        if control:
            rate = self._set_point_rate()
            need = rate - (self.chamber - self.set_point) / p.control_tau_min - leak
            if need < 0:
                self.valve_pct = min(100.0, -need / p.cool_max_c_per_min * 100.0)
                cool = 0.0 if f.ln2_empty else p.cool_max_c_per_min * self.valve_pct / 100.0
            else:
                self.valve_pct = 0.0
                heat = min(p.heat_max_c_per_min, need)
        self.chamber += (leak - cool + heat) * minutes
        for probe in self.probes:
            if probe.latent_left > 0:
                probe.latent_left += (self.chamber - probe.temp) / probe.tau_min * minutes
                probe.temp += (p.freezing_point_c - 0.3 - probe.temp) * min(1.0, minutes)  # the plateau
                continue
            probe.temp += (self.chamber - probe.temp) * min(1.0, minutes / probe.tau_min)
            if not probe.frozen and probe.temp <= probe.nucleation_c:
                probe.frozen = True
                probe.temp = min(probe.temp + p.exotherm_jump_c, p.freezing_point_c)
                probe.latent_left = p.latent_budget_c_min

    def _set_point_rate(self) -> float:
        run, profile = self.run, self.profile
        if run is None or profile is None:
            return 0.0
        step = profile.steps[run.step - 1]
        if step.type != "ramp" or abs(self.set_point - step.target_c) < 1e-9:
            return 0.0
        return -(step.rate_c_per_min or 0.0) if step.target_c < self.set_point else (step.rate_c_per_min or 0.0)

    # -- what the freezer reports ------------------------------------------------------------------
    def reading(self) -> Reading:
        p, f, run = self.physics, self.faults, self.run
        alarms = 0
        if f.ln2_empty:
            alarms |= ALARM_LN2
        if f.door_open:
            alarms |= ALARM_DOOR
        if 0 in f.open_probes:
            alarms |= ALARM_CHAMBER_PROBE
        if f.open_probes - {0}:
            alarms |= ALARM_SAMPLE_PROBE
        if run is not None and abs(self.chamber - self.set_point) > p.device_deviation_c:
            alarms |= ALARM_DEVIATION
        if run is not None and run.power_failed:
            alarms |= ALARM_POWER_FAIL
        step_type = "I"
        if run is not None and self.profile is not None:
            step_type = "R" if self.profile.steps[run.step - 1].type == "ramp" else "H"
        return Reading(
            time_s=self.time_s,
            run_id=run.run_id if run else None,
            step=run.step if run else 0,
            step_type=step_type,
            step_elapsed_s=int(run.step_elapsed_s) if run else 0,
            set_point=round(self.set_point, 2),
            chamber=None if 0 in f.open_probes else round(self.chamber + self._noise(), 2),
            probes=tuple(
                None if i + 1 in f.open_probes else round(pr.temp + self._noise(), 2)
                for i, pr in enumerate(self.probes)
            ),
            valve_pct=round(self.valve_pct, 1),
            alarms=alarms,
        )

    def _noise(self) -> float:
        return self.rng.gauss(0.0, self.physics.noise_c) if self.physics.noise_c > 0 else 0.0
