"""In-process doubles of the adapter plugin interface and of the journal's append, for core tests.

``FakeAdapter`` plays a script of batches and failures; protocol behaviour is tested against the
real simulators in tests/integration, never here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

from pydantic import BaseModel

from gateway.adapter import SharedResources
from gateway.config import EquipmentConfig
from gateway.errors import CommunicationError
from gateway.points import DeviceMap, PointSpec
from gateway.records import ProcessRecord, RawReading, ReadingBatch, RecordDraft, utc_now


class FakeEquipment(EquipmentConfig):
    kind: Literal["fake"] = "fake"
    points: list[str] = ["temperature"]


def fake_map(points: list[str]) -> DeviceMap:
    return DeviceMap(
        name="fake",
        points={p: PointSpec(name=p, parameter=p, unit="Cel", valid_min=-200, valid_max=200) for p in points},
    )


@dataclass
class Script:
    """What the fake device does on each connect: fail, or deliver these values then end or hang."""

    connects: list[list[float] | Exception] = field(default_factory=list)
    acknowledged: list[ReadingBatch] = field(default_factory=list)
    attempts: int = 0
    #: False: the supervisor may read on while earlier batches are being committed.
    needs_acknowledge: bool = True


class FakeAdapter:
    def __init__(self, equipment: FakeEquipment, script: Script) -> None:
        self.equipment = equipment
        self.script = script
        self.needs_acknowledge = script.needs_acknowledge

    async def __aenter__(self) -> Self:
        step = self.script.connects[min(self.script.attempts, len(self.script.connects) - 1)]
        self.script.attempts += 1
        if isinstance(step, Exception):
            raise step
        self.values = step
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[ReadingBatch]:
        for value in self.values:
            now = utc_now()
            readings = [
                RawReading(self.equipment.id, p, f"fake://{self.equipment.id}/{p}", value, now, raw=b"\x01")
                for p in self.equipment.points
            ]
            yield ReadingBatch(self.equipment.id, readings, token=value)
        raise CommunicationError("script ended", equipment_id=self.equipment.id, address="fake://")

    async def acknowledge(self, batch: ReadingBatch) -> None:
        self.script.acknowledged.append(batch)


class FakePlugin:
    kind = "fake"
    config_model: type[BaseModel] = FakeEquipment

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts = scripts or {}

    def device_map(self, equipment: FakeEquipment) -> DeviceMap:
        return fake_map(equipment.points)

    def create(self, equipment: FakeEquipment, resources: SharedResources) -> FakeAdapter:
        return FakeAdapter(equipment, self.scripts.setdefault(equipment.id, Script()))


def factory(plugin: FakePlugin, equipment: FakeEquipment) -> Callable[[], FakeAdapter]:
    return lambda: plugin.create(equipment, SharedResources())


class Collector:
    """Stands in for the journal's append: keeps drafts in commit order."""

    def __init__(self) -> None:
        self.drafts: list[RecordDraft] = []
        self.changed = asyncio.Event()

    async def __call__(self, entries: Sequence[tuple[RecordDraft, bytes | None]]) -> Sequence[ProcessRecord]:
        self.drafts += [d for d, _ in entries]
        self.changed.set()
        return []

    async def until(self, predicate: Callable[[list[RecordDraft]], bool], timeout_s: float = 10.0) -> None:
        """Wait (bounded) until the committed drafts satisfy ``predicate``."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.drafts):
                self.changed.clear()
                await self.changed.wait()
