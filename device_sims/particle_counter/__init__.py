"""Cleanroom particle-counter simulator: Lighthouse, MET ONE 6000 and PMS AirNet II over Modbus TCP/RTU.

The register layouts are written from the vendors' manuals independently of the gateway's own maps, so
that a wrong address or word order on either side shows up as a failing integration test.
"""

from __future__ import annotations

from .faults import Fault
from .limits import limit_per_m3, sampled_volume_m3
from .model import CounterState, Sample
from .profiles import PROFILE_NAMES
from .sim import ParticleCounterSim, serve

__all__ = [
    "PROFILE_NAMES",
    "CounterState",
    "Fault",
    "ParticleCounterSim",
    "Sample",
    "limit_per_m3",
    "sampled_volume_m3",
    "serve",
]
