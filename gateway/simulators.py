"""Start the simulators a config declares (demo, qualification), found through entry points.

The data path never imports a simulator: this module only looks them up by kind at run time and
hands their endpoints to the config loader for ``${sim.NAME.port}``-style placeholders.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog

from gateway.config import SimulatorEntry
from gateway.errors import ConfigError, SimulatorError
from gateway.plugins import sim_factories

log = structlog.get_logger(__name__)

ENDPOINT_ATTRS = ("host", "port", "serial_path", "endpoint")


@contextlib.asynccontextmanager
async def running_simulators(entries: Sequence[SimulatorEntry]) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Start every simulator, yield their endpoints by name, stop them all on exit."""
    if not entries:
        yield {}
        return
    factories = sim_factories()
    endpoints: dict[str, dict[str, Any]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for entry in entries:
            if entry.kind not in factories:
                known = ", ".join(sorted(factories)) or "none installed"
                raise ConfigError(f"simulators: {entry.name}: unknown simulator kind {entry.kind!r} ({known})")
            try:
                sim = factories[entry.kind](**entry.options)
            except TypeError as exc:
                raise ConfigError(f"simulators: {entry.name}: {exc}") from exc
            try:
                await stack.enter_async_context(sim)  # type: ignore[arg-type]
            except OSError as exc:
                raise SimulatorError(f"simulator {entry.name} could not start: {exc}") from exc
            endpoints[entry.name] = {a: getattr(sim, a, None) for a in ENDPOINT_ATTRS}
            log.debug(
                "simulator started", simulator=entry.name, kind=entry.kind, endpoint=endpoints[entry.name]["endpoint"]
            )
        yield endpoints
