"""One task per device; reconnect with capped exponential backoff and jitter; outages as data.

This is the only place that retries. A device that fails is logged once when it goes down and once
when it comes back, however many attempts lie between, and the journal gets a ``communication``
``lost`` event plus a bad-quality record for each of its parameters, then ``restored``. A failing
device never touches another device's task. A journal failure is not a device failure: it stops the
gateway, because nothing could be committed any more.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from gateway.adapter import Adapter
from gateway.backoff import capped_backoff
from gateway.config import EquipmentConfig, SupervisorConfig
from gateway.errors import DeviceError, JournalError
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.records import ProcessRecord, Quality, ReadingBatch, utc_now

log = structlog.get_logger(__name__)

#: Commits entries durably and returns them as committed records (the journal's ``append``).
Commit = Callable[[Sequence[Entry]], Awaitable[Sequence[ProcessRecord]]]
#: Told of every committed record, e.g. to print them live.
OnRecords = Callable[[Sequence[ProcessRecord]], None]


def backoff_delays(policy: SupervisorConfig, rng: random.Random) -> Callable[[int], float]:
    """Delay before attempt ``n`` (0-based): initial × 2ⁿ, capped, ± jitter so devices do not sync up."""
    return capped_backoff(policy.backoff_initial_s, policy.backoff_max_s, policy.backoff_jitter, rng)


@dataclass
class DeviceHealth:
    """What a reader of ``status`` wants to know about one device."""

    equipment_id: str
    state: str = "starting"  # starting | up | down
    since: datetime = field(default_factory=utc_now)
    last_error: str | None = None
    batches: int = 0
    records: int = 0
    failures: int = 0


class DeviceSupervisor:
    """Keeps one device connected for as long as the gateway runs."""

    def __init__(
        self,
        equipment: EquipmentConfig,
        make_adapter: Callable[[], Adapter],
        pipeline: EquipmentPipeline,
        commit: Commit,
        policy: SupervisorConfig,
        *,
        on_records: OnRecords | None = None,
        rng: random.Random | None = None,
        max_in_flight: int = 8,
    ) -> None:
        self.equipment = equipment
        self.make_adapter = make_adapter
        self.pipeline = pipeline
        self.commit = commit
        self.on_records = on_records
        self.health = DeviceHealth(equipment.id)
        self._delay = backoff_delays(policy, rng or random.Random())
        self._log = log.bind(equipment_id=equipment.id, kind=equipment.kind)
        self.max_in_flight = max_in_flight
        self._in_flight: deque[asyncio.Future[None]] = deque()

    async def run(self) -> None:
        """Run until cancelled. Raises only what must stop the gateway (a JournalError, a bug in the core)."""
        try:
            await self._run()
        finally:
            for task in self._in_flight:
                task.cancel()  # records already handed to the journal are committed regardless
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            self._in_flight.clear()

    async def _run(self) -> None:
        attempt = 0
        while True:
            _raise_if_cancelling()
            try:
                async with self.make_adapter() as adapter:
                    # A device that is acknowledged (a queue pop) waits for each commit before its next
                    # read; any other keeps reading while earlier reads are being committed.
                    depth = 1 if getattr(adapter, "needs_acknowledge", True) else self.max_in_flight
                    async for batch in adapter.batches():
                        if self.health.state != "up":
                            await self._restored()
                            attempt = 0
                        await self._handle(adapter, batch, depth)
                    await self._drain()
            except DeviceError as exc:
                await self._lost(Quality(exc.quality), str(exc))
            except (JournalError, asyncio.CancelledError):
                raise
            except Exception as exc:  # an adapter bug must not take the other devices down
                await self._lost(Quality.BAD_DEVICE_FAILURE, f"adapter error: {exc!r}", exc_info=exc)
            else:
                await self._lost(Quality.BAD_COMMUNICATION_ERROR, "the adapter stopped delivering readings")
            await asyncio.sleep(self._delay(attempt))
            attempt += 1

    async def _handle(self, adapter: Adapter, batch: ReadingBatch, depth: int) -> None:
        _raise_if_cancelling()
        self.health.batches += 1
        entries = self.pipeline.process(batch) if batch.readings or batch.events else []
        if depth == 1:
            await self._commit(entries)
            await adapter.acknowledge(batch)
            return
        self._in_flight.append(asyncio.ensure_future(self._commit_then_acknowledge(entries, adapter, batch)))
        while len(self._in_flight) >= depth:
            await self._in_flight.popleft()

    async def _commit_then_acknowledge(self, entries: Sequence[Entry], adapter: Adapter, batch: ReadingBatch) -> None:
        await self._commit(entries)
        await adapter.acknowledge(batch)

    async def _drain(self) -> None:
        """Wait for every read handed to the journal, so what follows is committed after it."""
        while self._in_flight:
            await self._in_flight.popleft()

    async def _commit(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        records = await self.commit(entries)
        self.health.records += len(records)
        if self.on_records is not None:
            self.on_records(records)

    async def _lost(self, quality: Quality, detail: str, *, exc_info: BaseException | None = None) -> None:
        await self._drain()
        self.health.failures += 1
        self.health.last_error = detail
        if self.health.state == "down":
            return  # logged and journalled when it went down; retries are not news
        was = self.health.state
        self.health.state, self.health.since = "down", utc_now()
        self._log.warning(
            "device unreachable" if was == "starting" else "device lost", error=detail, exc_info=exc_info
        )
        await self._commit(self.pipeline.communication_lost(quality, detail, self.health.since))

    async def _restored(self) -> None:
        now = utc_now()
        if self.health.state == "down":
            down_s = (now - self.health.since).total_seconds()
            self._log.info("device recovered", down_s=round(down_s, 3), failures=self.health.failures)
            await self._commit(
                self.pipeline.communication_restored(f"answering again after {down_s:.1f} s", now)
            )
        else:
            self._log.info("device connected")
        self.health.state, self.health.since, self.health.last_error = "up", now, None


def _raise_if_cancelling() -> None:
    """Stop if this task was cancelled, even if a library swallowed the CancelledError.

    Python 3.11's ``asyncio.wait_for`` (which pymodbus uses for every request) can lose a
    cancellation that lands as the answer arrives; without this check a device task would
    then run on after the gateway was told to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
