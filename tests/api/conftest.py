"""A running gateway with its operator API on 127.0.0.1 port 0, a real journal, and devices the test feeds.

The ``feed`` device reads what the test puts in its queue (a value and the device's own timestamp), so
a test decides exactly which reading exists and when it was taken; a small monitor raises a
``temperature_alarm`` above 100 and clears it below. Users of every role are in the users file, each
with a token made the way ``cgt-gateway user add`` makes them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

import aiohttp
import pytest
from pydantic import BaseModel

from gateway.adapter import SharedResources
from gateway.api import add_user
from gateway.config import EquipmentConfig, load_site
from gateway.journal import JournalReader
from gateway.points import DeviceMap
from gateway.records import Kind, ProcessRecord, RawReading, ReadingBatch, utc_now
from gateway.runtime import RunningGateway, run_gateway
from tests.fakes import fake_map
from tests.waiting import eventually

#: name → role of the users every API test has.
USERS = {"vera": "viewer", "olga": "operator", "oscar": "operator", "quinn": "qa", "adam": "admin"}


class FeedEquipment(EquipmentConfig):
    kind: Literal["feed"] = "feed"
    alarm_above: float = 100.0


class FeedAdapter:
    """Yields one batch per value the test puts in the queue; acknowledges nothing."""

    needs_acknowledge = False

    def __init__(self, equipment: FeedEquipment, queue: asyncio.Queue[tuple[float, datetime | None]]) -> None:
        self.equipment = equipment
        self.queue = queue

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[ReadingBatch]:
        eq = self.equipment.id
        yield ReadingBatch(eq, [])  # connected: the supervisor marks the device up
        while True:
            value, source_time = await self.queue.get()
            reading = RawReading(eq, "temperature", f"feed://{eq}/temperature", value, utc_now(),
                                 source_time=source_time)
            yield ReadingBatch(eq, [reading])

    async def acknowledge(self, batch: ReadingBatch) -> None:
        return None


class AboveMonitor:
    """``temperature_alarm`` ``high`` when a temperature goes above the limit, ``normal`` when it comes back."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.high = False

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for row in rows:
            if row.get("parameter") != "temperature" or not isinstance(row.get("value"), int | float):
                continue
            high = row["value"] > self.limit
            if high != self.high:
                self.high = high
                out.append({"parameter": "temperature_alarm", "kind": Kind.ALARM, "value": "high" if high else "normal",
                            "gateway_time": row["gateway_time"], "source_time": row.get("source_time"),
                            "detail": f"temperature {row['value']} {'above' if high else 'back below'} {self.limit}"})
        return out


@dataclass
class FeedPlugin:
    kind = "feed"
    config_model: type[BaseModel] = FeedEquipment
    queues: dict[str, asyncio.Queue[tuple[float, datetime | None]]] = field(default_factory=dict)

    def queue(self, equipment_id: str) -> asyncio.Queue[tuple[float, datetime | None]]:
        return self.queues.setdefault(equipment_id, asyncio.Queue())

    def device_map(self, equipment: FeedEquipment) -> DeviceMap:
        return fake_map(["temperature"])

    def create(self, equipment: FeedEquipment, resources: SharedResources) -> FeedAdapter:
        return FeedAdapter(equipment, self.queue(equipment.id))

    def monitors(self, equipment: FeedEquipment, device_map: DeviceMap) -> list[AboveMonitor]:
        return [AboveMonitor(equipment.alarm_above)]


@dataclass
class Site:
    """The gateway under test, its API's address, a token per user, and the way to feed its devices."""

    running: RunningGateway
    plugin: FeedPlugin
    tokens: dict[str, str]
    http: aiohttp.ClientSession
    users_file: Path
    stop: asyncio.Event
    runner: asyncio.Task[Any]

    @property
    def url(self) -> str:
        assert self.running.api is not None
        return self.running.api.url

    @property
    def journal_path(self) -> Path:
        return self.running.journal.path

    def headers(self, user: str | None, verifier: str | None = None) -> dict[str, str]:
        out = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        if verifier is not None:
            out["X-Verifier-Token"] = self.tokens[verifier]
        return out

    async def call(self, method: str, path: str, user: str | None = None, *, verifier: str | None = None,
                   body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, headers=self.headers(user, verifier),
                                     json=body) as response:
            data = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, data

    async def feed(self, equipment_id: str, value: float, source_time: datetime | None = None) -> ProcessRecord:
        """Put a reading on the device and return its committed record (bounded wait)."""
        source_time = source_time or utc_now()
        self.plugin.queue(equipment_id).put_nowait((value, source_time))

        def committed() -> ProcessRecord | None:
            with JournalReader(self.journal_path) as reader:
                return next((r for r in reader.of_parameter("temperature") if r.equipment_id == equipment_id
                             and r.value == value and r.source_time == source_time), None)

        return await eventually(committed, what=f"{equipment_id} reading {value} committed")

    def audit(self, action: str | None = None) -> list[dict[str, Any]]:
        with JournalReader(self.journal_path) as reader:
            return [e for e in reader.audit() if action is None or e["action"] == action]


def write_site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    if path.exists():
        return path
    path.write_text(
        "gateway: {id: gw-api}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2}\n"
        "api: {listen: '127.0.0.1:0', users_file: users.yaml}\n"
        "equipment:\n"
        "  - {id: CP-1, class: cell_processor, kind: feed, isa95: {site: plant-1, area: suite-3, unit: cp-1}}\n"
        "  - {id: FR-1, class: freezer, kind: feed}\n"
    )
    return path


@contextlib.asynccontextmanager
async def running_site(tmp_path: Path, tokens: dict[str, str] | None = None) -> AsyncIterator[Site]:
    """The gateway of ``tmp_path``'s site file running, its devices up, its API answering; stopped on exit.

    Without ``tokens`` the users of :data:`USERS` are added first (a second start passes the first's).
    """
    path = write_site(tmp_path)
    users_file = tmp_path / "users.yaml"
    if tokens is None:
        tokens = {name: add_user(users_file, name, role) for name, role in USERS.items()}  # type: ignore[arg-type]
    plugin = FeedPlugin()
    loaded = load_site(path, {"feed": plugin})  # type: ignore[dict-item]
    started: asyncio.Future[RunningGateway] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(loaded, stop=stop, on_started=started.set_result, drain_grace_s=0))
    try:
        await asyncio.wait([started, runner], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()  # the gateway did not start: its error is the test's
        running = started.result()
        await eventually(lambda: all(s.health.state == "up" for s in running.supervisors), what="devices up")
        async with aiohttp.ClientSession() as http:
            yield Site(running, plugin, tokens, http, users_file, stop, runner)
    finally:
        stop.set()
        await runner


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running
