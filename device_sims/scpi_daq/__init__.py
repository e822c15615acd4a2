"""SCPI temperature DAQ simulator: probes in an LN₂ dewar or dry shipper, on a TCP socket or a pty.

The SCPI side is written from SCPI-99 and IEEE 488.2 independently of the gateway's VISA adapter, so a
disagreement between the two shows up as a failing integration test.
"""

from __future__ import annotations

from .instrument import QUEUE_DEPTH, Identity, ScpiInstrument
from .model import DewarConfig, DewarModel
from .sim import FAULTS, TRANSPORTS, DaqState, ScpiDaqSim

__all__ = [
    "FAULTS",
    "QUEUE_DEPTH",
    "TRANSPORTS",
    "DaqState",
    "DewarConfig",
    "DewarModel",
    "Identity",
    "ScpiDaqSim",
    "ScpiInstrument",
]
