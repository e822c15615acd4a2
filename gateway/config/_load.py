"""Load a site file: YAML → models of the installed adapters → device maps, with located errors."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

import orjson
from pydantic import BaseModel, Field, ValidationError, create_model

from gateway.adapter import AdapterPlugin
from gateway.config._limits import LimitTable, load_limit_table
from gateway.config._models import PROJECT_CONFIG_DIR, EquipmentConfig, SiteBase
from gateway.config._sinks import SinkConfig
from gateway.config._yaml import YamlDocument
from gateway.errors import ConfigError
from gateway.points import DeviceMap

if TYPE_CHECKING:
    from gateway.sinks.base import SinkPlugin

#: ``${sim.NAME.ATTR}`` stands for an endpoint of a simulator the config starts itself (demo, OQ).
PLACEHOLDER = re.compile(r"\$\{sim\.([A-Za-z0-9._-]+?)\.(host|port|serial_path|endpoint)\}")
#: What check-config puts in place of a placeholder when no simulator runs.
STAND_INS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 1502,
    "serial_path": "/dev/null",
    "endpoint": "opc.tcp://127.0.0.1:4840/stand-in/",
}
#: Stand-ins that differ by simulator kind (an MES stand-in's endpoint is an HTTP URL).
KIND_STAND_INS: dict[str, dict[str, Any]] = {
    "mes": {"endpoint": "http://127.0.0.1:8080/records", "port": 8080},
    "scpi-daq": {"endpoint": "TCPIP0::127.0.0.1::5025::SOCKET", "port": 5025},
}



@dataclass(frozen=True)
class LoadedSite:
    """A validated site file with everything it refers to, and the hash that pins it."""

    path: Path
    site: Any  # the dynamic SiteConfig model
    maps: dict[str, DeviceMap]
    #: The limit table each equipment with ``particle_limits`` is judged by.
    limit_tables: dict[str, LimitTable]
    config_hash: str
    plugins: dict[str, AdapterPlugin] = field(repr=False)

    @property
    def equipment(self) -> list[EquipmentConfig]:
        return list(self.site.equipment)

    def equipment_by_id(self, equipment_id: str) -> EquipmentConfig:
        for eq in self.site.equipment:
            if eq.id == equipment_id:
                return eq  # type: ignore[no-any-return]
        known = ", ".join(eq.id for eq in self.site.equipment) or "none"
        raise ConfigError(f"{self.path}: no equipment {equipment_id!r} (configured: {known})")


def site_model(
    plugins: dict[str, AdapterPlugin], sink_types: Mapping[str, SinkPlugin] | None = None
) -> type[BaseModel]:
    """The site file's model with discriminated unions over the installed adapters' and sinks' configs."""
    return create_model(
        "SiteConfig",
        __base__=SiteBase,
        equipment=(
            list[_union([p.config_model for p in plugins.values()], "kind", EquipmentConfig)],  # type: ignore[misc]
            Field(default_factory=list, description="the equipment this gateway reads"),
        ),
        sinks=(
            list[_union([p.config_model for p in (sink_types or {}).values()], "type", SinkConfig)],  # type: ignore[misc]
            Field(default_factory=list, description="where committed records go: MES, broker, OPC UA server, files"),
        ),
    )


def _union(models: list[type[BaseModel]], discriminator: str, fallback: type[BaseModel]) -> Any:
    if not models:
        return fallback
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator=discriminator)]  # noqa: UP007 - runtime tuple


def substitute(data: Any, endpoints: dict[str, dict[str, Any]] | None) -> Any:
    """Replace simulator placeholders; with ``endpoints=None`` use stand-ins (checking, not running)."""
    if isinstance(data, dict):
        return {k: substitute(v, endpoints) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, endpoints) for v in data]
    if not isinstance(data, str) or "${" not in data:
        return data

    def value(match: re.Match[str]) -> Any:
        name, attr = match.group(1), match.group(2)
        if endpoints is None:
            return STAND_INS[attr]
        if name not in endpoints:
            raise ConfigError(f"placeholder {match.group(0)} names no simulator of this config")
        return endpoints[name][attr]

    whole = PLACEHOLDER.fullmatch(data)
    if whole:  # keep the type: a port stays an int
        return value(whole)
    return PLACEHOLDER.sub(lambda m: str(value(m)), data)


def load_site(
    path: Path,
    plugins: dict[str, AdapterPlugin],
    *,
    sim_endpoints: dict[str, dict[str, Any]] | None = None,
    sink_types: dict[str, SinkPlugin] | None = None,
) -> LoadedSite:
    """Load and check a site file. Raises ConfigError listing every problem, one line each.

    ``sink_types`` defaults to the installed sink plugins.
    """
    path = Path(path)
    doc = YamlDocument(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}:1: (top level): expected a mapping with gateway: and equipment:")
    from gateway.plugins import (  # late: the plugins module imports the sink base, which imports config
        ADAPTER_GROUP,
        SINK_GROUP,
        broken_plugins,
        sink_plugins,
    )

    if sink_types is None:
        sink_types = sink_plugins()
    _check_kinds(doc, plugins, broken=broken_plugins(ADAPTER_GROUP))
    _check_kinds(doc, sink_types, section="sinks", key="type", what="sink types", broken=broken_plugins(SINK_GROUP))
    data = substitute(doc.data, sim_endpoints if sim_endpoints is not None else _stand_ins(doc.data))
    context = {"config_dir": path.parent.resolve(), "project_config_dir": PROJECT_CONFIG_DIR}
    try:
        site = site_model(plugins, sink_types).model_validate(data, context=context)
    except ValidationError as exc:
        raise doc.errors(exc) from None
    problems = _check_unique(doc, site)
    maps: dict[str, DeviceMap] = {}
    tables: dict[str, LimitTable] = {}
    search = [path.parent.resolve(), PROJECT_CONFIG_DIR]
    for i, eq in enumerate(site.equipment):
        try:
            maps[eq.id] = plugins[eq.kind].device_map(eq)
            if eq.particle_limits is not None:
                tables[eq.id] = load_limit_table(eq.particle_limits.table, search)
        except ConfigError as exc:
            line, where = doc.locate(("equipment", i))
            problems += [p if _located(p) else f"{path}:{line}: {where}: {p}" for p in exc.problems]
    if problems:
        raise ConfigError(problems)
    return LoadedSite(
        path=path, site=site, maps=maps, limit_tables=tables,
        config_hash=_hash(doc.data, maps, tables), plugins=plugins,
    )


def _located(problem: str) -> bool:
    """A problem already in ``FILE:LINE:`` form (from a map or table file) keeps its own location."""
    return bool(re.match(r"^[^:\s]+:\d+: ", problem))


def _stand_ins(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Endpoints for placeholders when no simulator runs (check-config): plausible per simulator kind."""
    entries = data.get("simulators") or []
    out: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out[entry["name"]] = STAND_INS | KIND_STAND_INS.get(str(entry.get("kind")), {})
    return out


def _check_kinds(
    doc: YamlDocument,
    plugins: Mapping[str, object],
    *,
    section: str = "equipment",
    key: str = "kind",
    what: str = "adapters",
    broken: Mapping[str, str] | None = None,
) -> None:
    """An unknown adapter kind or sink type, named with its line and what is installed."""
    broken = broken or {}
    entries = doc.data.get(section) or []
    if not isinstance(entries, list):
        return  # the model reports the type error with its line
    installed = ", ".join(sorted(plugins)) or "none"
    problems = []
    for i, entry in enumerate(entries):
        kind = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(entry, dict) and kind not in plugins:
            line, where = doc.locate((section, i, key))
            if kind in broken:
                problems.append(
                    f"{doc.path}:{line}: {where}: {key} {kind!r} is installed but failed to load "
                    f"({broken[kind]}); reinstall cgt-gateway or the package that provides it"
                )
                continue
            said = f"no {key} given" if kind is None else f"unknown {key} {kind!r}"
            problems.append(f"{doc.path}:{line}: {where}: {said} (installed {what}: {installed})")
    if problems:
        raise ConfigError(problems)


def _check_unique(doc: YamlDocument, site: Any) -> list[str]:
    problems, seen = [], set()
    for i, eq in enumerate(site.equipment):
        if eq.id in seen:
            line, where = doc.locate(("equipment", i, "id"))
            problems.append(f"{doc.path}:{line}: {where}: equipment id {eq.id!r} is used twice")
        seen.add(eq.id)
    for section, what in (("simulators", "simulator"), ("sinks", "sink")):
        names = [s.name for s in getattr(site, section)]
        for i, name in enumerate(names):
            if names.index(name) != i:
                line, where = doc.locate((section, i, "name"))
                problems.append(f"{doc.path}:{line}: {where}: {what} name {name!r} is used twice")
    return problems


def _hash(data: Any, maps: dict[str, DeviceMap], tables: dict[str, LimitTable]) -> str:
    """sha256 of what the config says (site plus every map it loads), not of its comments or layout.

    Simulator placeholders are hashed as written, so a demo's hash does not change with the ports
    its simulators happen to bind.
    """
    body = {
        "site": data,
        "maps": {k: m.model_dump(mode="json") for k, m in sorted(maps.items())},
        "limit_tables": {k: t.model_dump(mode="json") for k, t in sorted(tables.items())},
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)).hexdigest()
