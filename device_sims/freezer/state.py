"""What a :class:`~device_sims.freezer.sim.FreezerSim` reports of itself to a test: plain frozen snapshots."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    lot: str | None
    outcome: str
    samples: int


@dataclass(frozen=True)
class FreezerState:
    """A snapshot for assertions."""

    time_s: float
    run_id: str | None
    step: int
    chamber_c: float
    sample_c: tuple[float, ...]
    set_point_c: float
    valve_pct: float
    profile: str | None
    profile_checksum: str | None
    faults_active: tuple[str, ...]
    lines_sent: int
    lines_lost: int
    commands: tuple[str, ...]
    runs: tuple[RunRecord, ...]
    link_up: bool
    #: How far the freezer's clock is off the wall clock it started from (``skew_s`` plus a clock_skew fault).
    clock_skew_s: float = 0.0
