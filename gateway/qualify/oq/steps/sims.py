"""Simulator steps: faults injected and cleared, links restored, a device power-cycled, its state read."""

from __future__ import annotations

from typing import Any

from gateway.qualify.oq.steps.errors import StepFailed
from gateway.qualify.oq.timeline import SimAction


def find_sim(sims: dict[str, Any], name: str) -> Any:
    """The simulator the site names ``name``; StepFailed naming the ones it has when there is none."""
    if name not in sims:
        raise StepFailed(f"no simulator named {name!r} in the site (have: {', '.join(sims)})")
    return sims[name]


def sim_number(sims: dict[str, Any], name: str, attr: str) -> float:
    """A number from a simulator's ``state()`` snapshot (StepFailed when there is no such number)."""
    value = getattr(find_sim(sims, name).state(), attr, None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StepFailed(f"simulator {name}: state has no number {attr!r}")
    return float(value)


def inject(sims: dict[str, Any], action: SimAction) -> str:
    find_sim(sims, action.sim).inject(action.fault, **_unit(action), **action.params)
    return f"{action.fault} injected on {action.sim}"


def clear(sims: dict[str, Any], action: SimAction) -> str:
    find_sim(sims, action.sim).clear(action.fault, **_unit(action))
    return f"{action.fault} cleared on {action.sim}"


async def restore(sims: dict[str, Any], action: SimAction) -> str:
    await find_sim(sims, action.sim).restore()
    return f"{action.sim} restored"


async def restart(sims: dict[str, Any], name: str) -> str:
    """Stop the simulator and start it again on the same endpoint, as a device power-cycled."""
    sim = find_sim(sims, name)
    if not callable(getattr(sim, "restart", None)):
        raise StepFailed(f"simulator {name} cannot be restarted")
    await sim.restart()
    return f"{name} restarted on the same endpoint (sessions dropped)"


def _unit(action: SimAction) -> dict[str, int]:
    return {"unit_id": action.unit_id} if action.unit_id is not None else {}
