"""Find adapters, sinks and simulators through entry points, so the core imports no concrete one.

An installed package registers ``<kind> = "package.module:plugin"`` under ``cgt_gateway.adapters``
(a sink type under ``cgt_gateway.sinks``, a simulator's CLI ``main`` under ``cgt_gateway.sims``); the
core learns the kinds at run time. A plugin that fails to import does not take the others down: it
is left out, logged once, and a site file that uses it is told why (:func:`broken_plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import structlog

from gateway.adapter import AdapterPlugin
from gateway.errors import ConfigError
from gateway.sinks.base import SinkPlugin

log = structlog.get_logger(__name__)

ADAPTER_GROUP = "cgt_gateway.adapters"
SIM_GROUP = "cgt_gateway.sims"
SIM_FACTORY_GROUP = "cgt_gateway.sim_factories"
SINK_GROUP = "cgt_gateway.sinks"

_BROKEN: dict[str, dict[str, str]] = {}


@cache
def adapter_plugins() -> dict[str, AdapterPlugin]:
    """Every installed adapter plugin that loads, by kind (loaded once per process)."""
    return _load(ADAPTER_GROUP, "kind")


@cache
def sink_plugins() -> dict[str, SinkPlugin]:
    """Every installed sink type that loads, by name (the built-in ones are registered the same way)."""
    return _load(SINK_GROUP, "type")


def broken_plugins(group: str) -> dict[str, str]:
    """Entry points of ``group`` that are installed but failed to load, with the error, by name."""
    return dict(_BROKEN.get(group, {}))


def sim_mains() -> dict[str, Callable[[list[str] | None], int]]:
    """Each simulator's command-line entry, by kind (``cgt-gateway sim KIND ...``)."""
    return _load(SIM_GROUP, None)


def sim_factories() -> dict[str, Callable[..., object]]:
    """Each simulator's class, by kind, for configs that start simulators in-process (demo, OQ)."""
    return _load(SIM_FACTORY_GROUP, None)


def _load(group: str, name_attr: str | None) -> dict[str, Any]:
    loaded: dict[str, Any] = {}
    for ep in entry_points(group=group):
        try:
            plugin = ep.load()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if _BROKEN.setdefault(group, {}).get(ep.name) != error:
                log.error("plugin failed to load; left out", group=group, name=ep.name, target=ep.value, error=error)
            _BROKEN[group][ep.name] = error
            continue
        if name_attr is not None and getattr(plugin, name_attr) != ep.name:
            raise ConfigError(
                f"{group} entry point {ep.name!r} serves {name_attr} {getattr(plugin, name_attr)!r}: they must match"
            )
        loaded[ep.name] = plugin
    return loaded
