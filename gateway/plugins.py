"""Find adapters and simulators through entry points, so the core imports no concrete one.

An installed package registers ``<kind> = "package.module:plugin"`` under ``cgt_gateway.adapters``
(or a simulator's CLI ``main`` under ``cgt_gateway.sims``); the core learns the kinds at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points

from gateway.adapter import AdapterPlugin
from gateway.errors import ConfigError
from gateway.sinks.base import SinkPlugin

ADAPTER_GROUP = "cgt_gateway.adapters"
SIM_GROUP = "cgt_gateway.sims"
SIM_FACTORY_GROUP = "cgt_gateway.sim_factories"
SINK_GROUP = "cgt_gateway.sinks"


@cache
def adapter_plugins() -> dict[str, AdapterPlugin]:
    """Every installed adapter plugin by kind (loaded once per process)."""
    plugins: dict[str, AdapterPlugin] = {}
    for ep in entry_points(group=ADAPTER_GROUP):
        plugin = ep.load()
        if plugin.kind != ep.name:
            raise ConfigError(f"adapter entry point {ep.name!r} serves kind {plugin.kind!r}: they must match")
        plugins[ep.name] = plugin
    return plugins


def sim_mains() -> dict[str, Callable[[list[str] | None], int]]:
    """Each simulator's command-line entry, by kind (``cgt-gateway sim KIND ...``)."""
    return {ep.name: ep.load() for ep in entry_points(group=SIM_GROUP)}


def sim_factories() -> dict[str, Callable[..., object]]:
    """Each simulator's class, by kind, for configs that start simulators in-process (demo, OQ)."""
    return {ep.name: ep.load() for ep in entry_points(group=SIM_FACTORY_GROUP)}


@cache
def sink_plugins() -> dict[str, SinkPlugin]:
    """Every installed sink type by name (the built-in ones are registered the same way)."""
    plugins: dict[str, SinkPlugin] = {}
    for ep in entry_points(group=SINK_GROUP):
        plugin = ep.load()
        if plugin.type != ep.name:
            raise ConfigError(f"sink entry point {ep.name!r} serves type {plugin.type!r}: they must match")
        plugins[ep.name] = plugin
    return plugins
