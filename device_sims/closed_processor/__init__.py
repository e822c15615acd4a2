"""Closed-system cell processor simulator: a LADS-shaped OPC UA server playing a CAR-T run in compressed time.

The node layout is the contract with the gateway's OPC UA node map (see README.md); the simulator is its
source of truth.
"""

from __future__ import annotations

from .faults import Fault
from .model import TEMPLATES, InvalidState, RunResult
from .nodes import NAMESPACE_URI, PROFILES
from .server import SECURITY_MODES
from .sim import ClosedProcessorSim, ClosedProcessorState

__all__ = [
    "NAMESPACE_URI",
    "PROFILES",
    "SECURITY_MODES",
    "TEMPLATES",
    "ClosedProcessorSim",
    "ClosedProcessorState",
    "Fault",
    "InvalidState",
    "RunResult",
]
