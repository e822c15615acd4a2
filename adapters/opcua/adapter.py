"""The OPC UA adapters: one subscription per server (``mode: subscribe``) or a read per tick (``mode: poll``).

Lifecycle (what the supervisor relies on)::

    async with OpcUaAdapter(eq, node_map) as adapter:   # session open, map resolved, items monitored
        async for batch in adapter.batches():           # one batch per notification burst
            ...
    # exit: subscription deleted, session closed, idempotently

A dead session (asyncua's watchdog, a BadShutdown/BadTimeout status change, the notification queue
overflowing) ends ``batches()`` with a CommunicationError once whatever had already arrived has been
yielded; the supervisor then builds a new adapter with a new session. Nothing here reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from asyncua import ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent, Subscription

from adapters.opcua.batch import BatchBuilder, ResolvedPoint
from adapters.opcua.config import OpcUaEquipmentConfig
from adapters.opcua.nodemap import NodeMap, OpcUaPoint
from adapters.opcua.program import ProgramTracker
from adapters.opcua.session import LIBRARY_ERRORS, Session, chunks
from adapters.opcua.status import MISSING_NODE_CODES, status_name
from gateway.adapter import ConnectedAdapter, PollingAdapter
from gateway.records import ReadingBatch

#: Notifications folded into one batch at most: a burst larger than this becomes several batches.
MAX_BATCH_EVENTS = 5_000


def _filter(point: OpcUaPoint) -> ua.DataChangeFilter | None:
    if point.deadband_abs is None and point.deadband_percent is None:
        return None
    f = ua.DataChangeFilter()
    f.Trigger = ua.DataChangeTrigger.StatusValue
    if point.deadband_abs is not None:
        f.DeadbandType, f.DeadbandValue = ua.DeadbandType.Absolute, point.deadband_abs
    else:
        f.DeadbandType, f.DeadbandValue = ua.DeadbandType.Percent, float(point.deadband_percent or 0)
    return f


def monitor_request(handle: int, rp: ResolvedPoint, default_sampling_ms: float) -> ua.MonitoredItemCreateRequest:
    """One monitored item: value attribute, reporting, the point's sampling, queue and deadband."""
    rv = ua.ReadValueId()
    rv.NodeId = rp.node_id
    rv.AttributeId = ua.AttributeIds.Value
    params = ua.MonitoringParameters()
    params.ClientHandle = handle
    sampling = rp.point.sampling_interval_ms
    params.SamplingInterval = default_sampling_ms if sampling is None else sampling
    params.QueueSize = rp.point.queue_size
    params.DiscardOldest = True
    flt = _filter(rp.point)
    if flt is not None:
        params.Filter = flt
    req = ua.MonitoredItemCreateRequest()
    req.ItemToMonitor = rv
    req.MonitoringMode = ua.MonitoringMode.Reporting
    req.RequestedParameters = params
    return req


class OpcUaAdapter(ConnectedAdapter):
    """Subscribe mode: one subscription in iterator mode with a bounded queue that never drops silently."""

    #: Nothing is acknowledged to an OPC UA server: reads may overlap earlier commits.
    needs_acknowledge = False

    def __init__(self, equipment: OpcUaEquipmentConfig, node_map: NodeMap) -> None:
        self.eq = equipment
        self.session = Session(equipment, node_map)
        self.log = self.session.log
        self.builder = BatchBuilder(equipment.id, [], ProgramTracker(node_map.program))
        self._sub: Subscription | None = None
        self._by_handle: dict[int, ResolvedPoint] = {}
        self._overflowed = False

    async def connect(self) -> None:
        s = self.session
        await s.open()
        points = await s.resolve()
        self.builder.points = points
        client = s.client
        assert client is not None
        self._sub = sub = await s.call(
            "creating the subscription",
            lambda: client.create_subscription(
                self.eq.publishing_interval_ms,
                None,
                queue_maxsize=self.eq.queue_maxsize,
                overflow=OverflowPolicy.DISCONNECT,
            ),
        )
        # DISCONNECT, with our hook: an overflow ends this session with an error (the supervisor
        # journals the gap) instead of asyncua dropping notifications with a log line.
        sub.set_overflow_disconnect_handler(self._on_overflow)
        usable = [rp for rp in points if rp.usable]
        handles = {i + 1: rp for i, rp in enumerate(usable)}
        for part in chunks(list(handles.items()), s.limits.get("monitor", 0)):
            requests = [monitor_request(h, rp, self.eq.publishing_interval_ms) for h, rp in part]
            results = await s.call("creating monitored items", lambda r=requests: sub.create_monitored_items(r))
            for (handle, rp), result in zip(part, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    code = result.value & 0xFFFF0000
                    if code not in MISSING_NODE_CODES:
                        self.log.warning("opcua monitored item refused", point=rp.point.name, status=status_name(code))
                    rp.problem = code
                else:
                    self._by_handle[handle] = rp
        for rp in points:
            if rp.problem is not None:
                code, rp.problem = rp.problem, None
                self.builder.quarantine(rp, code)
        self.log.info(
            "opcua subscription created", monitored=len(self._by_handle), quarantined=len(points) - len(self._by_handle)
        )

    def _on_overflow(self) -> None:
        self._overflowed = True

    def _dead(self) -> str | None:
        if self._overflowed:
            return f"notification queue overflowed ({self.eq.queue_maxsize} waiting): notifications were lost"
        return self.session.lost

    async def batches(self) -> AsyncIterator[ReadingBatch]:
        sub = self._sub
        if sub is None:
            raise self.session.error("batches() called on an adapter that is not open")
        for first in self.builder.take():  # what the connect found (quarantined points)
            if first.readings or first.events:
                yield first
        idle_s = min(self.eq.poll_interval_s, self.eq.watchdog_interval_s)
        while True:
            dead = self._dead()
            if dead is not None:
                # What arrived before the loss is data: deliver it, then report the loss.
                while events := _drain(sub, MAX_BATCH_EVENTS):
                    for event in events:
                        self._take_event(event)
                    for batch in self.builder.take():
                        yield batch
                raise self.session.error(dead)
            event = await sub.next_event(timeout=idle_s)
            if event is not None:
                self._take_event(event)
                for event in _drain(sub, MAX_BATCH_EVENTS - 1):
                    self._take_event(event)
            # with no event this is one empty batch: the supervisor's "alive, nothing new"
            for batch in self.builder.take():
                yield batch

    def _take_event(self, event: object) -> None:
        if isinstance(event, DataChangeEvent):
            rp = self._by_handle.get(event.data.subscription_data.client_handle)
            if rp is not None:
                self.builder.add(rp, event.data.monitored_item.Value)
        elif isinstance(event, StatusChangeEvent):
            status = event.notification.Status
            if not status.is_good():
                self.session.lost = self.session.lost or f"subscription status {status_name(status.value)}"
        elif event is None:  # the iterator's end sentinel: the subscription was deleted under us
            self.session.lost = self.session.lost or "the subscription was closed"

    async def acknowledge(self, batch: ReadingBatch) -> None:
        """Nothing to tell an OPC UA server."""

    async def close(self) -> None:
        """Delete the subscription, then close the session. Safe to call twice."""
        sub, self._sub = self._sub, None
        if sub is not None and self.session.client is not None and self.session.lost is None:
            try:
                async with asyncio.timeout(self.eq.timeout_s):
                    await sub.delete()
            except LIBRARY_ERRORS as exc:  # the session goes next; the server drops its subscriptions with it
                self.log.info("opcua subscription delete incomplete", error=repr(exc))
        await self.session.close()


def _drain(sub: Subscription, limit: int) -> list[object]:
    """Whatever is already queued, without waiting (so one burst is one batch).

    asyncua 2.1.0 has no public non-blocking get (``next_event(timeout=0)`` always times out), so this
    reads the iterator's queue directly; the version is pinned.
    """
    queue = sub._event_queue
    out: list[object] = []
    while queue is not None and len(out) < limit:
        try:
            out.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return out


class OpcUaPollAdapter(PollingAdapter):
    """Poll mode: read every point each ``poll_interval_s`` with Read, chunked by MaxNodesPerRead."""

    def __init__(self, equipment: OpcUaEquipmentConfig, node_map: NodeMap) -> None:
        super().__init__(poll_interval_s=equipment.poll_interval_s, equipment_id=equipment.id)
        self.eq = equipment
        self.session = Session(equipment, node_map)
        self.builder = BatchBuilder(equipment.id, [], ProgramTracker(node_map.program))

    async def connect(self) -> None:
        await self.session.open()
        points = await self.session.resolve()
        self.builder.points = points
        for rp in points:
            if rp.problem is not None:
                code, rp.problem = rp.problem, None
                self.builder.quarantine(rp, code)

    async def close(self) -> None:
        await self.session.close()

    async def _read(self) -> list[ReadingBatch]:
        if self.session.lost is not None:
            raise self.session.error(self.session.lost)
        usable = [rp for rp in self.builder.points if rp.usable]
        values = await self.session.read(usable)
        self.builder.add_all(zip(usable, values, strict=True))
        return self.builder.take()

    async def poll(self) -> AsyncIterator[ReadingBatch]:
        """One read: one batch (a Read returns one value per node), after the connect's quarantine batch."""
        for batch in await self._read():
            if batch.readings or batch.events:
                yield batch

    async def read_once(self) -> ReadingBatch | None:
        """The current values as one batch (every point once: a Read returns one value per node)."""
        batches = await self._read()
        readings = [r for b in batches for r in b.readings]
        events = [e for b in batches for e in b.events]
        last = batches[-1]
        return ReadingBatch(self.eq.id, readings, events=events, lot_id=last.lot_id, process_step=last.process_step)
