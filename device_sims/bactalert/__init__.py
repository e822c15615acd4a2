"""BacT/ALERT culture-reader simulator: bottles against lots, results as ASTM E1381/E1394 on a pty.

The ASTM encoding and the instrument's side of the link are written here independently of the gateway's
codec, so that a mistake on one side shows up as a failing integration test instead of being mirrored.
"""

from __future__ import annotations

from .model import Bottle
from .sim import BactAlertSim
from .state import FAULTS, SimState

__all__ = ["FAULTS", "BactAlertSim", "Bottle", "SimState"]
