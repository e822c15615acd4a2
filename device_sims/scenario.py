"""A scripted fault timeline, so a demo or an OQ run shows excursions and outages without a hand on it.

Shared by every simulator: a target only needs `inject(fault, unit_id=..., **params)` and `restore()`.

Each step is plain data (it comes from YAML)::

    scenario:
      - {after_s: 20, inject: excursion, samples: 3, every_s: 90}   # repeat every 90 s
      - {after_s: 45, inject: disconnect}
      - {after_s: 55, restore: true}
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class FaultTarget(Protocol):
    def inject(self, fault: str, *, unit_id: int | None = None, **params: float) -> None: ...

    async def restore(self) -> None: ...


@dataclass(frozen=True, order=True)
class ScenarioStep:
    after_s: float
    inject: str | None = field(default=None, compare=False)
    restore: bool = field(default=False, compare=False)
    unit_id: int | None = field(default=None, compare=False)
    every_s: float | None = field(default=None, compare=False)
    params: Mapping[str, float] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ScenarioStep:
        data = dict(raw)
        try:
            after_s = float(data.pop("after_s"))
        except KeyError:
            raise ValueError(f"scenario step {raw} needs after_s") from None
        step = cls(
            after_s=after_s,
            inject=data.pop("inject", None),
            restore=bool(data.pop("restore", False)),
            unit_id=data.pop("unit_id", None),
            every_s=data.pop("every_s", None),
            params={k: float(v) for k, v in data.items()},
        )
        if (step.inject is None) == (not step.restore):
            raise ValueError(f"scenario step {raw} needs exactly one of inject: or restore: true")
        if step.after_s < 0 or (step.every_s is not None and step.every_s <= 0):
            raise ValueError(f"scenario step {raw}: after_s must be >= 0 and every_s > 0")
        return step


def parse_scenario(raw: Sequence[Mapping[str, Any]] | None) -> list[ScenarioStep]:
    return sorted(ScenarioStep.parse(s) for s in raw or ())


async def run_scenario(target: FaultTarget, steps: Sequence[ScenarioStep]) -> None:
    """Play the steps against the simulator from now on; repeating steps go round until cancelled."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue = [(s.after_s, i, s) for i, s in enumerate(steps)]
    heapq.heapify(queue)
    while queue:
        at, i, step = heapq.heappop(queue)
        await asyncio.sleep(max(0.0, start + at - loop.time()))
        if step.restore:
            await target.restore()
        else:
            assert step.inject is not None
            target.inject(step.inject, unit_id=step.unit_id, **step.params)
        if step.every_s is not None:
            heapq.heappush(queue, (at + step.every_s, i, step))
