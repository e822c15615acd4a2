"""Controlled-rate freezer simulator: physics (chamber, lagging sample probes, exotherm, LN₂ valve), the
classic profile from data, the line protocol on a pty, and the faults a freezer shows."""

from __future__ import annotations

from .model import FreezerModel, Physics, Profile, Reading, Step, load_profile
from .sim import FAULTS, FreezerSim, FreezerState, RunRecord

__all__ = [
    "FAULTS",
    "FreezerModel",
    "FreezerSim",
    "FreezerState",
    "Physics",
    "Profile",
    "Reading",
    "RunRecord",
    "Step",
    "load_profile",
]
