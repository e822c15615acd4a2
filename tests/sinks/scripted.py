"""A sink that answers as a test script says: for testing the forwarder, not any protocol.

Each write pops the next step: ``"ok"``, an exception to raise, or a function from the batch to the
outcomes. With no steps left every record is accepted. Everything delivered is recorded in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.sinks import Outcome, SinkBatch

Step = str | BaseException | Callable[[SinkBatch], Sequence[Outcome] | None]


@dataclass
class ScriptedSink:
    name: str = "scripted"
    steps: list[Step] = field(default_factory=list)
    connect_failures: list[BaseException] = field(default_factory=list)
    batches: list[SinkBatch] = field(default_factory=list)
    #: seq → how many times it was accepted (delivered), for exactly-once checks.
    accepted: dict[int, int] = field(default_factory=dict)
    connects: int = 0
    closes: int = 0
    wrote: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> None:
        self.connects += 1
        if self.connect_failures:
            raise self.connect_failures.pop(0)

    async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None:
        self.batches.append(batch)
        self.wrote.set()
        step: Step = self.steps.pop(0) if self.steps else "ok"
        if isinstance(step, BaseException):
            raise step
        outcomes = None if step == "ok" else step(batch)  # type: ignore[operator]
        for i, record in enumerate(batch.records):
            if outcomes is None or outcomes[i] == Outcome.accepted():
                self.accepted[record["seq"]] = self.accepted.get(record["seq"], 0) + 1
            elif outcomes[i].verdict == "retry":
                break
        return outcomes

    async def close(self) -> None:
        self.closes += 1

    def seqs(self) -> list[int]:
        return sorted(self.accepted)
