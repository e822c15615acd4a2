"""Helpers for the ASTM integration tests (no tests here): equipment entries for the BacT/ALERT simulator and
a gateway harness running the real adapter under the real supervisor, pipeline and journal.

The harness notes, at the start of every commit, which messages the simulator had counted as delivered:
the simulator counts a message only when its last frame is ACKed, so a message found in its own commit's
"before" list would mean the gateway ACKed before committing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.serial.astm import AstmEquipmentConfig, plugin
from device_sims.bactalert import BactAlertSim
from gateway.adapter import SharedResources
from gateway.config import SupervisorConfig
from gateway.identity import Attribution, Binding, BindingBook
from gateway.journal import Journal
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.records import ProcessRecord, utc_now
from gateway.supervisor import DeviceSupervisor
from tests.waiting import eventually

FAST = SupervisorConfig(backoff_initial_s=0.05, backoff_max_s=0.2, backoff_jitter=0.0)
#: Simulator timers short enough for tests (real seconds); the protocol's are 15 / 30 / 10 / 1.
SIM_TIMERS: dict[str, Any] = {"reply_s": 1.0, "receive_s": 1.0, "busy_retry_s": 0.2, "contention_s": 0.2}


def bactalert(bottles: Sequence[dict[str, Any]] | None = None, **options: Any) -> BactAlertSim:
    """A simulator whose load messages go out at once and whose hours pass in fractions of a second."""
    return BactAlertSim(bottles if bottles is not None else [{"lot": "LOT-A"}],
                        **{"time_scale": 36_000.0, "seed": 1, **SIM_TIMERS, **options})


def equipment(sim: BactAlertSim, **extra: Any) -> AstmEquipmentConfig:
    entry: dict[str, Any] = {"id": "BTA-1", "class": "culture_reader", "kind": "astm", "port": sim.serial_path}
    return AstmEquipmentConfig.model_validate({**entry, **extra})


class Gateway:
    """One ASTM device under a DeviceSupervisor that commits to a real journal."""

    def __init__(
        self, sim: BactAlertSim, eq: AstmEquipmentConfig, tmp_path: Path, bound_lots: Sequence[str] = ("LOT-A",)
    ) -> None:
        """``bound_lots`` are bound to other equipment (a processor each) from the start, by two operators."""
        self.sim, self.eq = sim, eq
        self.journal = Journal.open(tmp_path / "journal.sqlite", gateway_id="gw-astm")
        device_map = plugin.device_map(eq)
        book = BindingBook()
        for i, lot in enumerate(bound_lots):
            book.record(Binding(equipment_id=f"CP-{i}", lot_id=lot, coi_id=f"COI-{lot}", performed_by="op-a",
                                verified_by="op-b", reason="lot start", valid_from=utc_now() - timedelta(days=1)))
        self.pipeline = EquipmentPipeline(eq, device_map, "h" * 64, None, plugin.monitors(eq, device_map),
                                          Attribution(eq.id, book, eq.identity))
        #: (messages the simulator counted as delivered when the commit began, parameters committed)
        self.commits: list[tuple[tuple[str, ...], list[str]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Gateway:
        await self.journal.start()
        self.supervisor = DeviceSupervisor(
            self.eq, lambda: plugin.create(self.eq, SharedResources()), self.pipeline, self._commit, FAST,
            rng=random.Random(1),
        )
        self._task = asyncio.create_task(self.supervisor.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.journal.close()

    async def _commit(self, entries: Sequence[Entry]) -> Sequence[ProcessRecord]:
        self.commits.append((self.sim.state().sent, [d.parameter for d, _ in entries]))
        return await self.journal.append(entries)

    def records(self) -> list[tuple[ProcessRecord, bytes | None]]:
        with self.journal.reader() as reader:
            return list(reader.read_raw())

    def of(self, parameter: str, value: Any = None) -> list[tuple[ProcessRecord, bytes | None]]:
        return [(r, raw) for r, raw in self.records()
                if r.parameter == parameter and (value is None or r.value == value)]

    async def until(self, check: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
        return await eventually(check, timeout_s=timeout_s, what=what)


def frames_of(raw: bytes) -> list[bytes]:
    """Split concatenated frames (STX … CR LF)."""
    return [b"\x02" + part for part in raw.split(b"\x02") if part]


def checksum_ok(frame: bytes) -> bool:
    return frame[-4:-2] == b"%02X" % (sum(frame[1:-4]) % 256)
