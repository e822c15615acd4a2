"""The OPC UA server sink: the latest value of every parameter in an ISA-95 tree, read-only to clients.

    Objects / <gateway_id> / <site> / <area> / <unit> / <equipment_id> / <parameter>

Folders and variables are created on a parameter's first record; after that a record is two or
three direct writes into the address space (value, ``seq`` and, when they change, ``unit`` and the
equipment's ``lot_id`` / ``process_step`` / ``equipment_class``), so a batch never waits on a client.
The sink keeps the last record of every parameter in memory, so a close and a connect bring the
whole tree back, not only what the forwarder sends next; after a gateway restart it starts from the
journal's last record of every parameter (among the last 200 000 records).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import orjson
import structlog
from asyncua import Server, ua
from asyncua.common.node import Node

from gateway.journal import JournalReader
from gateway.sinks.base import Outcome, SinkBatch, SinkContext, SinkError, WireRecord
from gateway.sinks.opcua_server.config import OpcUaServerSinkConfig
from gateway.sinks.opcua_server.security import (
    ClientTrust,
    ReadOnlyRules,
    ReadOnlyUsers,
    ensure_certificate,
)
from gateway.sinks.opcua_server.values import (
    data_type,
    data_value,
    equipment_path,
    node_id_text,
    variant,
)

log = structlog.get_logger("gateway.sinks.opcua_server")

_POLICIES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}
#: Equipment properties, taken from the equipment's latest record.
EQUIPMENT_PROPERTIES = ("equipment_class", "lot_id", "process_step")
_VALUE = ua.AttributeIds.Value
_DATA_TYPE = ua.AttributeIds.DataType
#: A long batch yields to the event loop this often so clients are served while it is applied.
_YIELD_EVERY = 1000


@dataclass(slots=True)
class _Parameter:
    value: ua.NodeId
    unit: ua.NodeId
    seq: ua.NodeId
    variant_type: ua.VariantType
    last_unit: str | None = None


@dataclass(slots=True)
class _Equipment:
    props: dict[str, ua.NodeId]
    last: dict[str, Any]


class OpcUaServerSink:
    """An asyncua server inside the gateway. ``connect`` starts it, ``close`` stops it; both idempotent."""

    def __init__(self, config: OpcUaServerSinkConfig, context: SinkContext) -> None:
        self.config = config
        self.name = config.name
        self.gateway_id = context.gateway_id
        self.namespace_uri = config.namespace_uri or f"urn:cgt-gateway:{context.gateway_id}"
        self._journal_path = context.journal_path
        self._server: Server | None = None
        self._ns = 0
        self._url = config.endpoint
        self._folders: dict[tuple[str, ...], Node] = {}
        self._equipment: dict[tuple[str, ...], _Equipment] = {}
        self._parameters: dict[tuple[str, ...], _Parameter] = {}
        #: The last record of every parameter, kept across close/connect to rebuild the tree.
        self._latest: dict[tuple[str, ...], WireRecord] = {}

    @property
    def endpoint_url(self) -> str:
        """The URL clients connect to; with port 0 in the config, the port the OS gave once started."""
        return self._url

    @property
    def running(self) -> bool:
        return self._server is not None

    async def connect(self) -> None:
        """Start the server and rebuild the tree from the records it already holds. SinkError if it cannot."""
        if self._server is not None:
            return
        server = Server()
        try:
            await self._setup(server)
            await server.start()
        except OSError as exc:
            await _stop_quietly(server)
            raise SinkError(
                f"{self.name}: cannot listen on {self.config.endpoint} ({exc.strerror or exc}): "
                "free the port or choose another one in endpoint"
            ) from exc
        except Exception:
            await _stop_quietly(server)
            raise
        self._server = server
        assert server.bserver is not None
        url = urlparse(self.config.endpoint)
        self._url = urlunparse(url._replace(netloc=f"{url.hostname}:{server.bserver.port}"))
        log.info("opcua server started", sink=self.name, endpoint=self._url, policies=self.config.security_policies)
        if not self._latest and self._journal_path is not None:
            self._remember(await asyncio.to_thread(_latest_from_journal, self._journal_path))
        remembered = sorted(self._latest.values(), key=lambda r: r["seq"])
        await self._apply(remembered)

    async def _setup(self, server: Server) -> None:
        cfg = self.config
        await server.init()
        server.set_endpoint(cfg.endpoint)
        server.set_server_name(cfg.server_name)
        server.product_uri = "urn:cgt-gateway"
        server.manufacturer_name = "cgt-gateway"
        server.allow_remote_admin(False)
        server.iserver.set_user_manager(ReadOnlyUsers())  # type: ignore[arg-type]
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        app_uri = f"urn:cgt-gateway:{self.gateway_id}:opcua-server"
        if cfg.needs_certificate:
            app_uri = await ensure_certificate(cfg.certificate, cfg.private_key, app_uri, cfg.server_name)
            await server.load_certificate(str(cfg.certificate))
            await server.load_private_key(str(cfg.private_key))
        await server.set_application_uri(app_uri)
        trust = ClientTrust(cfg.trusted_clients_dir)
        await trust.prepare()
        if cfg.needs_certificate and cfg.trusted_clients_dir is None:
            log.warning(
                "opcua server accepts any client certificate (the channel is encrypted, the client not "
                "authenticated); set trusted_clients_dir to admit only known clients",
                sink=self.name,
            )
        server.set_certificate_validator(trust)
        server.set_security_policy([_POLICIES[p] for p in cfg.security_policies], permission_ruleset=ReadOnlyRules())
        self._ns = await server.register_namespace(self.namespace_uri)
        self._folders.clear()
        self._equipment.clear()
        self._parameters.clear()

    async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None:
        """Apply every record in order (the latest wins); all are accepted. SinkError if not started."""
        if self._server is None:
            raise SinkError(f"{self.name}: the OPC UA server is not running (connect first)")
        await self._apply(batch.records)
        self._remember(batch.records)
        return None

    def _remember(self, records: Sequence[WireRecord]) -> None:
        for record in records:
            self._latest[(*equipment_path(self.gateway_id, record), record["parameter"])] = record

    async def close(self) -> None:
        """Stop the server (about a second: asyncua waits for sessions to close). Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        await _stop_quietly(server)
        log.info("opcua server stopped", sink=self.name)

    async def _apply(self, records: Sequence[WireRecord]) -> None:
        assert self._server is not None
        aspace = self._server.iserver.aspace
        now = datetime.now(UTC)
        for i, record in enumerate(records, 1):
            path = equipment_path(self.gateway_id, record)
            key = (*path, record["parameter"])
            param = self._parameters.get(key) or await self._create_parameter(path, record)
            dv = data_value(record, now)
            dv = _coerced(dv, param)
            status = await aspace.write_attribute_value(param.value, _VALUE, dv)
            if status.value == ua.StatusCodes.BadTypeMismatch:
                await self._retype(param, dv)
            stamp = dv.SourceTimestamp
            seq = _prop(record["seq"], ua.VariantType.Int64, stamp, now)
            await aspace.write_attribute_value(param.seq, _VALUE, seq)
            if record.get("unit") != param.last_unit:
                param.last_unit = record.get("unit")
                unit = _prop(param.last_unit, ua.VariantType.String, stamp, now)
                await aspace.write_attribute_value(param.unit, _VALUE, unit)
            equipment = self._equipment[path]
            for prop in EQUIPMENT_PROPERTIES:
                if record.get(prop) != equipment.last.get(prop):
                    equipment.last[prop] = record.get(prop)
                    dv_prop = _prop(record.get(prop), ua.VariantType.String, stamp, now)
                    await aspace.write_attribute_value(equipment.props[prop], _VALUE, dv_prop)
            if i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _retype(self, param: _Parameter, dv: ua.DataValue) -> None:
        """A parameter whose value changed type (a number, then a text): the variable takes the new type.

        The server checks a write against the current value's type, or the DataType when the value is
        null; so the DataType changes first, a Bad write clears the value, then the value goes in.
        """
        assert self._server is not None and dv.Value is not None and dv.Value.VariantType != ua.VariantType.Null
        aspace = self._server.iserver.aspace
        param.variant_type = dv.Value.VariantType
        new_type = ua.Variant(ua.NodeId(param.variant_type.value), ua.VariantType.NodeId)
        await aspace.write_attribute_value(param.value, _DATA_TYPE, ua.DataValue(new_type))
        clear = ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.Bad), SourceTimestamp=dv.SourceTimestamp)
        await aspace.write_attribute_value(param.value, _VALUE, clear)
        status = await aspace.write_attribute_value(param.value, _VALUE, dv)
        if not status.is_good():
            log.error("opcua server: value not written", node=param.value.to_string(), status=status.name)

    async def _create_parameter(self, path: tuple[str, ...], record: WireRecord) -> _Parameter:
        equipment_node = await self._folder(path)
        ns = self._ns
        key = (*path, record["parameter"])
        text = node_id_text(key)
        value = record["value"] if record.get("value") is not None else None
        var = await equipment_node.add_variable(
            ua.NodeId(text, ns),
            ua.QualifiedName(record["parameter"], ns),
            ua.Variant(None, ua.VariantType.Null),
            datatype=data_type(value),
        )
        unit = await var.add_property(
            ua.NodeId(node_id_text(key, "unit"), ns), ua.QualifiedName("unit", ns), None, ua.VariantType.String
        )
        seq = await var.add_property(
            ua.NodeId(node_id_text(key, "seq"), ns), ua.QualifiedName("seq", ns), 0, ua.VariantType.Int64
        )
        kind = variant(value).VariantType
        param = _Parameter(var.nodeid, unit.nodeid, seq.nodeid, kind, last_unit=None)
        self._parameters[key] = param
        return param

    async def _folder(self, path: tuple[str, ...]) -> Node:
        """The node of a folder path (gateway, site, area, unit) or of an equipment (5 segments), made if missing."""
        node = self._folders.get(path)
        if node is not None:
            return node
        assert self._server is not None
        parent = self._server.nodes.objects if len(path) == 1 else await self._folder(path[:-1])
        nodeid, name = ua.NodeId(node_id_text(path), self._ns), ua.QualifiedName(path[-1], self._ns)
        if len(path) < 5:
            node = await parent.add_folder(nodeid, name)
        else:
            node = await parent.add_object(nodeid, name)
            props = {}
            for prop in EQUIPMENT_PROPERTIES:
                p = await node.add_property(
                    ua.NodeId(node_id_text(path, prop), self._ns),
                    ua.QualifiedName(prop, self._ns),
                    None,
                    ua.VariantType.String,
                )
                props[prop] = p.nodeid
            self._equipment[path] = _Equipment(props, {})
        self._folders[path] = node
        return node


def _coerced(dv: ua.DataValue, param: _Parameter) -> ua.DataValue:
    """An integer written to a Double variable is written as a Double (37 after 36.5 is a number, not a new type)."""
    v = dv.Value
    if v is not None and v.VariantType == ua.VariantType.Int64 and param.variant_type == ua.VariantType.Double:
        return ua.DataValue(
            Value=ua.Variant(float(v.Value), ua.VariantType.Double),
            StatusCode=dv.StatusCode,
            SourceTimestamp=dv.SourceTimestamp,
            ServerTimestamp=dv.ServerTimestamp,
        )
    return dv


def _prop(value: Any, kind: ua.VariantType, source: datetime | None, now: datetime) -> ua.DataValue:
    return ua.DataValue(Value=ua.Variant(value, kind), SourceTimestamp=source, ServerTimestamp=now)


def _latest_from_journal(path: Path) -> list[WireRecord]:
    """The last committed record of every parameter, so a restarted gateway serves current values at once."""
    if not path.exists():
        return []
    with JournalReader(path) as reader:
        return [orjson.loads(payload) | {"hash": hash_} for _, payload, _, hash_ in reader.latest()]


async def _stop_quietly(server: Server) -> None:
    """Stop a server that may be half started; a failure to stop is logged, never raised over the cause."""
    try:
        await server.stop()
    except Exception as exc:  # a half-started asyncua server fails in stop() in various ways
        log.warning("opcua server did not stop cleanly", error=repr(exc))
