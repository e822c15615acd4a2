"""The rig one case runs on: its simulators, its gateway (in-process or a process) and its journal.

Simulators are found by kind through the installed simulator factories (the core never imports them);
the runner starts them itself so it can inject faults, then hands the gateway a resolved copy of the
site file (placeholders filled, no ``simulators:`` section) in the case's own folder, so each case has
its own journal.

The steps a case's timeline may take live with their family: :mod:`.sims` (faults, restarts, device
state), :mod:`.gateway` (start, stop, kill, the journal edited behind its back), :mod:`.mes` (the MES
stand-in, lot bindings), :mod:`.cli_api` (the command line and the operator API) and :mod:`.site` (the
case's own site file); :mod:`.rig` holds the rig, what it observes and which family carries out a step.
"""

from gateway.qualify.oq.steps.errors import StepFailed, StepRefused
from gateway.qualify.oq.steps.gateway import Usage
from gateway.qualify.oq.steps.rig import Rig, Sample

__all__ = ["Rig", "Sample", "StepFailed", "StepRefused", "Usage"]
