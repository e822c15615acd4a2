"""The process model: a CAR-T run on a closed-system cell processor, played in compressed time.

Pure state and arithmetic, no I/O and no clock of its own: the simulator calls `advance(sim_dt_s)` with
simulated seconds and publishes `values()` to OPC UA. Keeping it free of asyncua means a restart of the
server (a fault) cannot lose the run, and the model can be tested without a socket.

Typical values follow DOMAIN.md section 4.1: 37.0 degC, 5 % CO2, pH drifting down from 7.3 with lactate
and pulled back by feeds, DO 20-60 % air saturation, density 0.5 -> several 10^6/mL during expansion.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

DAY_S = 86_400.0

# ActiveProgram / FunctionalUnitState names (LADS FunctionalStateMachine, flattened to one string).
STOPPED = "Stopped"
IDLE = "Running.Idle"
EXECUTE = "Running.Execute"
HELD = "Running.Held"
COMPLETE = "Running.Complete"
ABORTED = "Aborted"

OUTCOMES = ("completed", "stopped", "aborted")

TEMPERATURE_TARGET_C = 37.0
TEMPERATURE_BAND_C = 1.0  # alarm limit (DOMAIN.md: +-0.5 normal, alarm at +-1.0)
CO2_TARGET_PCT = 5.0
CO2_BAND_PCT = 0.5
PRESSURE_HIGH_KPA = 30.0


@dataclass(frozen=True)
class StepSpec:
    """One phase of a program: its length in simulated seconds and the agitation it runs at."""

    name: str
    duration_s: float
    agitation_rpm: float
    cultured: bool = False  # cells are in culture: pH drifts with lactate and density grows


CAR_T_STEPS: tuple[StepSpec, ...] = (
    StepSpec("prime", 1_800, 0.0),
    StepSpec("cell_loading", 3_600, 5.0),
    StepSpec("selection", 7_200, 0.0),
    StepSpec("activation", 1 * DAY_S, 0.0, cultured=True),
    StepSpec("transduction", 1 * DAY_S, 5.0, cultured=True),
    StepSpec("expansion", 7 * DAY_S, 10.0, cultured=True),
    StepSpec("harvest", 7_200, 2.0),
    StepSpec("formulation", 3_600, 0.0),
)
WASH_STEPS: tuple[StepSpec, ...] = (
    StepSpec("prime", 1_800, 0.0),
    StepSpec("cell_loading", 3_600, 5.0),
    StepSpec("harvest", 3_600, 2.0),
    StepSpec("formulation", 1_800, 0.0),
)
TEMPLATES: Mapping[str, tuple[str, tuple[StepSpec, ...]]] = {
    "CAR-T-STD": ("CAR-T standard: enrich, activate, transduce, expand, harvest", CAR_T_STEPS),
    "WASH-ONLY": ("Wash and concentrate", WASH_STEPS),
}


class InvalidState(Exception):
    """A command that the current state does not allow (maps to OPC UA BadInvalidState)."""


@dataclass(frozen=True)
class RunResult:
    """One ResultSet entry: written when a run ends, whatever the outcome."""

    run_id: str
    job_id: str
    task_id: str
    template_id: str
    started: datetime
    ended: datetime
    outcome: str


@dataclass
class Run:
    run_id: str
    job_id: str
    task_id: str
    template_id: str
    steps: tuple[StepSpec, ...]
    started: datetime
    properties: Mapping[str, object] = field(default_factory=dict)
    step_index: int = 0
    step_elapsed_s: float = 0.0
    runtime_s: float = 0.0
    held: bool = False
    since_feed_s: float = 0.0

    @property
    def estimated_s(self) -> float:
        return sum(s.duration_s for s in self.steps)


@dataclass
class ModelFaults:
    """Process faults the model itself plays (link and address-space faults live in the simulator)."""

    excursion_left_s: float = 0.0
    excursion_delta_c: float = 0.0
    door_open: bool = False
    pressure_high: bool = False


class ProcessModel:
    """The state of one processor: its run, process values, alarms and finished results."""

    def __init__(self, rng: random.Random, *, operator_action_steps: Sequence[str] = ()) -> None:
        self._rng = rng
        self.operator_action_steps = frozenset(operator_action_steps)
        self.faults = ModelFaults()
        self.run: Run | None = None
        self.last_state = STOPPED
        self.results: list[RunResult] = []
        self.temperature_c = TEMPERATURE_TARGET_C
        self.co2_pct = CO2_TARGET_PCT
        self.ph = 7.3
        self.do_pct = 55.0
        self.agitation_rpm = 0.0
        self.pressure_kpa = 5.0
        self.density_e6_per_ml = 0.0
        self.viability_pct = 0.0
        self.operator_action_required = False

    # -- commands ------------------------------------------------------------------------------
    def start_program(
        self,
        template_id: str,
        job_id: str,
        task_id: str,
        now: datetime,
        properties: Mapping[str, object] | None = None,
    ) -> str:
        """Start a run and return its DeviceProgramRunId; InvalidState if one is running or unknown template."""
        if self.run is not None:
            raise InvalidState(f"run {self.run.run_id} is still active")
        if template_id not in TEMPLATES:
            raise InvalidState(f"unknown program template {template_id!r}; templates: {', '.join(TEMPLATES)}")
        run_id = f"run-{self._rng.getrandbits(48):012x}"
        self.run = Run(run_id, job_id, task_id, template_id, TEMPLATES[template_id][1], now, dict(properties or {}))
        self.ph, self.density_e6_per_ml, self.viability_pct = 7.3, 0.0, 0.0
        self._enter_step(self.run)
        return run_id

    def end_run(self, outcome: str, now: datetime) -> RunResult:
        """Stop/Abort (or completion): record the result before the state says the run is over."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        run = self.run
        if run is None:
            raise InvalidState("no run is active")
        result = RunResult(run.run_id, run.job_id, run.task_id, run.template_id, run.started, now, outcome)
        self.results.append(result)  # LADS: the result is complete before the state machine says so
        self.run = None
        self.operator_action_required = False
        self.last_state = {"completed": COMPLETE, "stopped": STOPPED, "aborted": ABORTED}[outcome]
        return result

    def acknowledge(self) -> None:
        """The operator confirms the action asked for at a step boundary; the run carries on."""
        if self.run is None or not self.run.held:
            raise InvalidState("no operator action is pending")
        self.run.held = False
        self.operator_action_required = False

    # -- time ----------------------------------------------------------------------------------
    def advance(self, dt_s: float, now: datetime) -> RunResult | None:
        """Move the process on by `dt_s` simulated seconds; returns the result if the run completed."""
        finished: RunResult | None = None
        run = self.run
        if run is not None and not run.held:
            run.runtime_s += dt_s
            run.step_elapsed_s += dt_s
            step = run.steps[run.step_index]
            if step.cultured:
                self._culture(step, dt_s, run)
            while run.step_elapsed_s >= run.steps[run.step_index].duration_s:
                run.step_elapsed_s -= run.steps[run.step_index].duration_s
                if run.step_index + 1 >= len(run.steps):
                    run.runtime_s = run.estimated_s
                    finished = self.end_run("completed", now)
                    break
                run.step_index += 1
                self._enter_step(run)
                if run.held:
                    run.step_elapsed_s = 0.0
                    break
        self._instruments(dt_s)
        return finished

    def _enter_step(self, run: Run) -> None:
        step = run.steps[run.step_index]
        if step.name == "cell_loading":
            self.density_e6_per_ml, self.viability_pct = 0.5, 95.0
        elif step.name == "formulation":
            self.density_e6_per_ml = max(self.density_e6_per_ml, 1.0) * 4.0  # concentrated for the bag
        if step.name in self.operator_action_steps:
            run.held = True
            self.operator_action_required = True

    def _culture(self, step: StepSpec, dt_s: float, run: Run) -> None:
        """Lactate pulls pH down about 0.15 a day; a daily feed in expansion brings it back up."""
        self.ph -= 0.15 * dt_s / DAY_S
        run.since_feed_s += dt_s
        if step.name == "expansion":
            self.density_e6_per_ml *= math.exp(math.log(12.0) / step.duration_s * dt_s)  # ~12-fold in a week
            if run.since_feed_s >= DAY_S:
                run.since_feed_s = 0.0
                self.ph += 0.2
        self.ph = min(7.4, max(6.8, self.ph))
        self.viability_pct = max(70.0, self.viability_pct - 0.5 * dt_s / DAY_S)

    def _instruments(self, dt_s: float) -> None:
        gauss = self._rng.gauss
        faults = self.faults
        excursion = 0.0
        if faults.excursion_left_s > 0:
            excursion = faults.excursion_delta_c
            faults.excursion_left_s = max(0.0, faults.excursion_left_s - dt_s)
        self.temperature_c = TEMPERATURE_TARGET_C + excursion + gauss(0.0, 0.03)
        self.co2_pct = CO2_TARGET_PCT + gauss(0.0, 0.05)
        step = self.run.steps[self.run.step_index] if self.run else None
        rpm = step.agitation_rpm if step else 0.0
        self.agitation_rpm = rpm + gauss(0.0, 0.1) if rpm else 0.0
        self.do_pct = min(60.0, max(20.0, 58.0 - 5.0 * self.density_e6_per_ml + gauss(0.0, 0.5)))
        self.pressure_kpa = (45.0 if faults.pressure_high else 5.0) + gauss(0.0, 0.2)

    # -- views ---------------------------------------------------------------------------------
    def state_name(self) -> str:
        """The FunctionalStateMachine state: Execute or Held while a run is active, else the last end state."""
        if self.run is None:
            return self.last_state
        return HELD if self.run.held else EXECUTE

    def alarms(self) -> dict[str, bool]:
        return {
            "TemperatureDeviation": abs(self.temperature_c - TEMPERATURE_TARGET_C) > TEMPERATURE_BAND_C,
            "CO2Deviation": abs(self.co2_pct - CO2_TARGET_PCT) > CO2_BAND_PCT,
            "DoorOpen": self.faults.door_open,
            "PressureHigh": self.pressure_kpa > PRESSURE_HIGH_KPA,
            "OperatorActionRequired": self.operator_action_required,
        }

    def values(self) -> dict[str, float]:
        """Process values by LADS function name."""
        return {
            "Temperature": self.temperature_c,
            "CO2": self.co2_pct,
            "pH": self.ph,
            "DissolvedOxygen": self.do_pct,
            "Agitation": self.agitation_rpm,
            "Pressure": self.pressure_kpa,
            "CellDensity": self.density_e6_per_ml,
            "Viability": self.viability_pct,
        }
