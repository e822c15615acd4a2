"""Put the parts together: simulators (if the config starts any), journal, one supervisor per device.

Shutdown order matters for "nothing lost": device tasks are cancelled first, then the operator API
(if the site has one) stops, then the journal drains what they handed it and closes, then shared
connections and simulators stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError

from gateway.adapter import Adapter, PollingAdapter, SharedResources
from gateway.api import OperatorApi
from gateway.clockdrift import clock_monitors
from gateway.config import LoadedSite, SimulatorEntry, YamlDocument, load_site
from gateway.errors import CommunicationError, ConfigError, JournalError, gateway_error_in
from gateway.housekeeping import Housekeeper
from gateway.identity import Attribution, BindingBook, Identity
from gateway.journal import AuditEntry, Journal, JournalReader
from gateway.limits import resolve_limits
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.plugins import adapter_plugins, sink_plugins
from gateway.simulators import running_simulators
from gateway.sinks import SinkContext
from gateway.sinks.forwarder import Forwarder
from gateway.supervisor import DeviceSupervisor, OnRecords

log = structlog.get_logger(__name__)

_SIM_ENTRIES = TypeAdapter(list[SimulatorEntry])

#: Reads of one device that may wait for the journal at once (devices that acknowledge wait for each).
#: A slow commit (a checkpoint, a busy disk) then grows the next transaction instead of stalling the
#: device; the journal's max_pending_rows still bounds what waits in memory.
READS_IN_FLIGHT = 32
#: Allocations between two young-generation collections while the gateway runs (Python's default: 700).
YOUNG_COLLECTION_THRESHOLD = 10_000


def declared_simulators(path: Path) -> list[SimulatorEntry]:
    """The simulators a site file asks for, read first: their endpoints fill the placeholders."""
    doc = YamlDocument(path)
    raw = doc.data.get("simulators") if isinstance(doc.data, dict) else None
    try:
        return _SIM_ENTRIES.validate_python(raw or [])
    except ValidationError as exc:
        raise doc.errors(exc, prefix=("simulators",)) from None


@contextlib.asynccontextmanager
async def loaded_site(path: Path, *, start_simulators: bool = True) -> AsyncIterator[LoadedSite]:
    """Load a site file, starting its simulators first when it declares any."""
    plugins = adapter_plugins()
    entries = declared_simulators(path) if start_simulators else []
    async with running_simulators(entries) as endpoints:
        yield load_site(path, plugins, sim_endpoints=endpoints if entries else None)


def build_pipeline(loaded: LoadedSite, equipment_id: str) -> EquipmentPipeline:
    eq = loaded.equipment_by_id(equipment_id)
    device_map = loaded.maps[eq.id]
    limits = None
    if eq.particle_limits is not None:
        try:
            limits = resolve_limits(eq.particle_limits, loaded.limit_tables[eq.id], device_map)
        except ConfigError as exc:
            raise ConfigError(
                [f"{loaded.path}: equipment {eq.id}: particle_limits: {p}" for p in exc.problems]
            ) from None
    make_monitors = getattr(loaded.plugins[eq.kind], "monitors", None)
    monitors = make_monitors(eq, device_map) if make_monitors is not None else []
    monitors = [*monitors, *clock_monitors(loaded.site.clock, eq)]
    return EquipmentPipeline(eq, device_map, loaded.config_hash, limits, monitors)


def check_site(loaded: LoadedSite) -> list[EquipmentPipeline]:
    """Everything that can be checked without a device: build every pipeline."""
    problems: list[str] = []
    pipelines = []
    for eq in loaded.equipment:
        try:
            pipelines.append(build_pipeline(loaded, eq.id))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return pipelines


@dataclass
class RunSummary:
    records: int
    last_seq: int
    journal_path: Path


@dataclass
class RunningGateway:
    """The parts of a running gateway, for status displays, metrics and the tests."""

    journal: Journal
    supervisors: list[DeviceSupervisor]
    forwarders: list[Forwarder]
    housekeeper: Housekeeper
    identity: Identity
    #: The local operator API, when the site file has ``api:``.
    api: OperatorApi | None = None


async def run_gateway(
    loaded: LoadedSite,
    *,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    on_records: OnRecords | None = None,
    on_started: Callable[[RunningGateway], None] | None = None,
    drain_grace_s: float | None = None,
) -> RunSummary:
    """Run until ``duration_s`` passes or ``stop`` is set; return what was committed.

    On the way out the devices stop first, then the sinks get ``drain_grace_s`` (default: the site's
    ``gateway.drain_on_stop_s``) to forward what is
    committed (what they do not reach stays in the journal for the next start), then the journal closes.
    """
    site = loaded.site
    pipelines = {p.equipment.id: p for p in check_site(loaded)}
    stop = stop or asyncio.Event()
    try:
        site.journal.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot create the journal's folder {site.journal.path.parent}: {exc.strerror}") from exc
    async with Journal.open(
        site.journal.path,
        gateway_id=site.gateway.id,
        synchronous=site.journal.synchronous,
        min_free_bytes=int(site.journal.min_free_mb * 1e6),
        commit_window_s=site.journal.commit_window_ms / 1000,
    ) as journal:
        first_seq = journal.last_seq
        identity = await _start_identity(loaded, journal, pipelines.values())
        async with SharedResources() as resources:
            running = RunningGateway(
                journal,
                supervisors=[
                    DeviceSupervisor(
                        eq,
                        _factory(loaded, eq.id, resources),
                        pipelines[eq.id],
                        journal.append,
                        site.supervisor,
                        on_records=on_records,
                        max_in_flight=READS_IN_FLIGHT,
                    )
                    for eq in loaded.equipment
                    if eq.enabled
                ],
                forwarders=_forwarders(loaded, journal),
                housekeeper=Housekeeper(journal, site.journal, [s.name for s in site.sinks], loaded.config_hash),
                identity=identity,
            )
            if site.api is not None:
                running.api = OperatorApi(running, site.api, site.gateway.id, loaded.equipment)
                await running.api.start()
            thresholds = gc.get_threshold()
            try:
                if on_started is not None:
                    on_started(running)
                # What start-up made (modules, config, maps) lives as long as the gateway: left out of
                # the collector's full passes, which otherwise stop the loop for 100 ms and more.
                gc.freeze()
                # Each read allocates hundreds of objects that live until their commit; at the default
                # threshold (700) the collector ran after nearly every read and walked them all again.
                gc.set_threshold(max(thresholds[0], YOUNG_COLLECTION_THRESHOLD), *thresholds[1:])
                async with _one_error(), asyncio.TaskGroup() as tg:
                    upkeep = [tg.create_task(f.run(), name=f"sink:{f.config.name}") for f in running.forwarders]
                    upkeep.append(tg.create_task(running.housekeeper.run(), name="housekeeping"))
                    devices = [tg.create_task(s.run(), name=f"device:{s.equipment.id}") for s in running.supervisors]
                    await tg.create_task(_wait(stop, duration_s), name="stop")
                    for task in devices:
                        task.cancel()
                    if devices:
                        await asyncio.wait(devices)
                    await journal.flush()  # what the devices handed over is committed before the sinks drain
                    grace = site.gateway.drain_on_stop_s if drain_grace_s is None else drain_grace_s
                    await _drain(running.forwarders, grace)
                    for task in upkeep:
                        task.cancel()
            finally:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
                if running.api is not None:  # before the journal closes: a request may still be writing to it
                    await running.api.stop()
        last = journal.last_seq
        await journal.audit(AuditEntry("gateway.stopped", f"gateway {site.gateway.id}", None, {"last_seq": last}))
    return RunSummary(records=last - first_seq, last_seq=last, journal_path=site.journal.path)


@contextlib.asynccontextmanager
async def _one_error() -> AsyncIterator[None]:
    """A task that stops the gateway (the journal refusing records) is raised as itself, for one clear line."""
    try:
        yield
    except BaseExceptionGroup as group:
        error = gateway_error_in(group)
        if error is None:
            raise
        raise error from None


async def _start_identity(
    loaded: LoadedSite, journal: Journal, pipelines: Iterable[EquipmentPipeline]
) -> Identity:
    """Rebuild the bindings from the audit trail, audit the start (and a changed config), attribute records."""
    trail = await asyncio.to_thread(_read_audit, journal.path)
    book = BindingBook.from_audit(trail)
    started = [e for e in trail if e.get("action") == "gateway.started"]
    previous = started[-1]["detail"].get("config_hash") if started else None
    detail = {"config_hash": loaded.config_hash, "site_file": str(loaded.path), "last_seq": journal.last_seq}
    entries = [AuditEntry("gateway.started", f"gateway {loaded.site.gateway.id}", None, detail)]
    if previous is not None and previous != loaded.config_hash:
        entries.insert(0, AuditEntry("config.changed", str(loaded.path), "detected at start-up by config hash",
                                     {"old": previous, "new": loaded.config_hash}))
        log.warning("site configuration changed since the last start", old=previous[:16], new=loaded.config_hash[:16])
    await journal.audit(*entries)
    for pipeline in pipelines:
        pipeline.attribution = Attribution(pipeline.equipment.id, book, pipeline.equipment.identity)
    equipment = {eq.id: (eq.equipment_class, eq.isa95) for eq in loaded.equipment}
    return Identity(journal, book, equipment, loaded.config_hash)


def _read_audit(path: Path) -> list[dict[str, Any]]:
    with JournalReader(path) as reader:
        return reader.audit()


def _forwarders(loaded: LoadedSite, journal: Journal) -> list[Forwarder]:
    types = sink_plugins()
    context = SinkContext(gateway_id=loaded.site.gateway.id, journal_path=journal.path)
    return [
        Forwarder(types[config.type].create(config, context), config, journal)
        for config in loaded.site.sinks
        if config.enabled
    ]


async def _drain(forwarders: list[Forwarder], grace_s: float) -> None:
    """Give the sinks a bounded moment to forward the last committed records."""
    if not forwarders or grace_s <= 0:
        return
    waiting = [asyncio.ensure_future(f.drained()) for f in forwarders]
    _, left = await asyncio.wait(waiting, timeout=grace_s)
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left)
        behind = {f.config.name: f.snapshot().backlog for f in forwarders if f.snapshot().backlog}
        log.warning("sinks still behind at shutdown; the journal keeps the records for the next start", backlog=behind)


async def read_once(loaded: LoadedSite, equipment_id: str, *, timeout_s: float = 10.0) -> list[Entry]:
    """One normalised sample of one device, journalled nowhere (commissioning, like ``telegraf --test``)."""
    eq = loaded.equipment_by_id(equipment_id)
    pipeline = build_pipeline(loaded, eq.id)
    async with SharedResources() as resources:
        adapter = loaded.plugins[eq.kind].create(eq, resources)
        try:
            async with asyncio.timeout(timeout_s), adapter:
                if isinstance(adapter, PollingAdapter):
                    # the device's current sample: no cursor moves, no queue is popped
                    while True:
                        batch = await adapter.read_once()
                        if batch is not None and batch.readings:
                            return pipeline.process(batch)
                        await asyncio.sleep(min(adapter.poll_interval_s, 0.5))
                async for batch in adapter.batches():
                    if batch.readings:
                        return pipeline.process(batch)
        except TimeoutError:
            raise CommunicationError(
                f"no sample within {timeout_s:g} s (the device answers but has nothing new yet?)",
                equipment_id=eq.id,
            ) from None
    raise CommunicationError("the adapter stopped before delivering a sample", equipment_id=eq.id)


def _factory(loaded: LoadedSite, equipment_id: str, resources: SharedResources) -> Callable[[], Adapter]:
    eq = loaded.equipment_by_id(equipment_id)
    plugin = loaded.plugins[eq.kind]
    return lambda: plugin.create(eq, resources)


async def _wait(stop: asyncio.Event, duration_s: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration_s):
            await stop.wait()
