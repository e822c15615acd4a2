"""MES-side steps: what the MES stand-in does (go down, come up, reject, fail, hang), and a lot bound to
equipment through the running gateway's identity service, as the MES or an operator would bind it."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.identity import IdentityError
from gateway.qualify.oq.steps.errors import StepFailed, StepRefused
from gateway.qualify.oq.timeline import BindLot, MesAction
from gateway.runtime import RunningGateway


async def mes_action(sims: dict[str, Any], action: MesAction) -> str:
    mes = sims.get(action.sim)
    if mes is None:
        raise StepFailed(f"no MES stand-in named {action.sim!r} in the site")
    method = getattr(mes, action.action)
    result = method(**action.params)
    if asyncio.iscoroutine(result):
        await result
    return f"MES stand-in {action.action} {action.params or ''}".rstrip()


async def bind_lot(running: RunningGateway | None, bind: BindLot) -> str:
    """Two people bind the lot (StepRefused with the identity service's reason when it will not)."""
    if running is None:
        raise StepFailed("bind_lot needs the gateway running in-process")
    try:
        binding = await running.identity.bind(
            bind.equipment, bind.lot, performed_by=bind.performed_by, verified_by=bind.verified_by,
            reason=bind.reason, coi_id=bind.coi_id, dins=bind.dins, process_step=bind.process_step,
        )
    except IdentityError as exc:
        raise StepRefused(str(exc)) from None
    return f"lot {binding.lot_id} bound to {bind.equipment} (DIN {binding.din})"
