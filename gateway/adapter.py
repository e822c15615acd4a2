"""The adapter interface, the shared polling loop, and the plugin contract adapters register with.

Lifecycle an adapter promises (the supervisor relies on it)::

    async with plugin.create(equipment, resources) as adapter:   # connect; raises DeviceError
        async for batch in adapter.batches():                     # until cancelled or DeviceError
            ...commit batch durably...
            await adapter.acknowledge(batch)                       # only after the commit
    # exit closes, idempotently, whatever happened

An adapter knows its protocol and nothing of records, journals or retries: it raises a DeviceError
subclass and the supervisor decides what happens next. Request/response devices subclass
:class:`PollingAdapter` and write only ``read_once``.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, runtime_checkable

from gateway.records import ReadingBatch

if TYPE_CHECKING:
    from pydantic import BaseModel

    from gateway.config import EquipmentConfig
    from gateway.points import DeviceMap

T = TypeVar("T")

#: The shortest wait the event loop's selector can make (epoll counts in milliseconds).
_TIMER_RESOLUTION_S = 0.001


@runtime_checkable
class Adapter(Protocol):
    """One device seen through one protocol."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def batches(self) -> AsyncIterator[ReadingBatch]:
        """Yield what the device says, one batch per read or message, until cancelled.

        A batch with no readings means the device answered with nothing new; adapters yield one
        at least once per poll interval so the supervisor knows the link is alive.
        """
        ...

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Tell the device a batch is durable (pop a queue, send an ACK). Called once per batch."""
        ...

    #: True when ``acknowledge`` tells the device something: the supervisor then commits and
    #: acknowledges each batch before asking for the next. False lets reads overlap earlier commits.
    #: An adapter without the attribute is treated as True.
    needs_acknowledge: bool


class ConnectedAdapter(ABC):
    """Base of adapters that hold a link: ``async with`` connects, and a failed connect still closes.

    Subclasses write ``connect`` and an idempotent ``close``; the lifecycle the supervisor relies on
    (enter connects or raises with nothing left open, exit always closes) is written here once.
    """

    @abstractmethod
    async def connect(self) -> None:
        """Open the link; raise CommunicationError (or another DeviceError) when the device cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release the link. Must be safe to call twice and after a failed connect."""

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class PollingAdapter(ConnectedAdapter):
    """Base for request/response devices: subclasses connect, close and ``read_once``.

    The loop keeps a fixed rate against the monotonic clock: a slow read delays the next one but
    never makes the loop catch up with a burst, and missed ticks are skipped, not queued. A wait
    shorter than the selector's millisecond is a yield, so a sub-millisecond interval ("as fast as
    the link allows") is not slowed to one read per millisecond.
    """

    def __init__(self, *, poll_interval_s: float, equipment_id: str = "") -> None:
        self.poll_interval_s = poll_interval_s
        self.equipment_id = equipment_id

    @abstractmethod
    async def read_once(self) -> ReadingBatch | None:
        """The device's current sample, read now (also what ``read-once`` prints). None: nothing yet."""

    #: Most polled devices need no acknowledgement; an adapter that does sets this True.
    needs_acknowledge: bool = False

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Most polled devices need no acknowledgement."""

    async def poll(self) -> AsyncIterator[ReadingBatch]:
        """One poll: what the device has new since the last one, zero or more batches, oldest first.

        The default is one ``read_once``. Devices that buffer (a record index, a queue) override this
        to catch up; the consumer commits and acknowledges each batch before asking for the next.
        """
        batch = await self.read_once()
        if batch is not None and (batch.readings or batch.events):
            yield batch

    async def batches(self) -> AsyncIterator[ReadingBatch]:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            delivered = False
            async with contextlib.aclosing(self.poll()) as polled:
                async for batch in polled:
                    delivered = True
                    yield batch
            if not delivered:
                # An empty batch says "the device answered, nothing new": the supervisor counts it
                # as a live link, so an idle but healthy device is never reported as lost.
                yield ReadingBatch(self.equipment_id, [])
            next_tick += self.poll_interval_s
            now = loop.time()
            if next_tick < now:  # fell behind: skip the missed ticks rather than burst
                next_tick = now + self.poll_interval_s - (now - next_tick) % self.poll_interval_s
            delay = next_tick - now
            # The selector waits in whole milliseconds: a shorter timer would cost a whole one. Yield
            # instead; the tick stays on the grid, so the rate still averages out to the interval.
            await asyncio.sleep(delay if delay >= _TIMER_RESOLUTION_S else 0)


class SharedResources:
    """Connections that several devices share, such as one RS-485 line with many unit ids.

    Owned by the runtime, closed when it stops. Keys are chosen by the adapter (e.g. the serial
    port path), so the core shares without knowing what it shares.
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    async def get(self, key: Hashable, factory: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """The resource for ``key``, entered on first use and kept until :meth:`aclose`."""
        async with self._lock:
            if key not in self._items:
                self._items[key] = await self._stack.enter_async_context(factory())
            return self._items[key]  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        async with self._lock:
            self._items.clear()
            await self._stack.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AdapterPlugin(Protocol):
    """What an adapter package exposes under the ``cgt_gateway.adapters`` entry point group."""

    #: The ``kind:`` of equipment entries this plugin serves, e.g. "modbus".
    kind: str
    #: The pydantic model of one equipment entry of this kind (subclass of EquipmentConfig).
    config_model: type[BaseModel]

    def device_map(self, equipment: EquipmentConfig) -> DeviceMap:
        """The device's points (loaded by the config model, so errors surfaced at load)."""
        ...

    def create(self, equipment: EquipmentConfig, resources: SharedResources) -> Adapter:
        """A new, unconnected adapter for one equipment entry."""
        ...

    # Optional: ``monitors(equipment, device_map) -> list[RecordMonitor]`` (see gateway.monitors), the
    # equipment-specific judgement its records get (excursion alarms, profile conformance).

