"""Helpers for the OPC UA server sink tests (no tests here): wire records exactly as the forwarder sends
them (committed to a real journal, read back as rows) and a client that browses the sink's tree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from asyncua import Client, ua
from asyncua.common.node import Node

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.sinks import SinkBatch

GATEWAY = "gw-suite-3"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ISA95 = Isa95Path(site="plant-1", area="suite-3", unit="isolator-1")


def draft(parameter: str, value: Any, i: int = 0, **overrides: Any) -> RecordDraft:
    """A record of the closed processor CP-1 at ``T0 + i s`` (source time 90 s behind, like its clock)."""
    fields: dict[str, Any] = {
        "equipment_id": "CP-1",
        "equipment_class": "cell_processor",
        "isa95": ISA95,
        "parameter": parameter,
        "source": f"opc.tcp://127.0.0.1:4840/ns=2;s={parameter}",
        "kind": Kind.MEASUREMENT,
        "value": value,
        "unit": "Cel",
        "quality": Quality.GOOD,
        "source_time": T0 + timedelta(seconds=i - 90),
        "gateway_time": T0 + timedelta(seconds=i),
        "lot_id": "LOT-0001",
        "process_step": "expansion",
        "config_hash": "ab" * 32,
    }
    fields.update(overrides)
    return RecordDraft(**fields)


class WireSource:
    """A real journal; ``batch(drafts)`` commits them and returns them as the forwarder would send them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal: Journal | None = None
        self.sent = 0

    async def __aenter__(self) -> WireSource:
        self.journal = Journal.open(self.path, gateway_id=GATEWAY)
        await self.journal.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.journal is not None
        await self.journal.__aexit__(None, None, None)

    async def batch(self, drafts: list[RecordDraft]) -> SinkBatch:
        assert self.journal is not None
        await self.journal.append([(d, None) for d in drafts])
        with JournalReader(self.path) as reader:
            records = [
                orjson.loads(payload) | {"hash": h, "delivery": {"late": False}}
                for _seq, payload, _raw, h in reader.rows(since_seq=self.sent, raw=False)
            ]
        self.sent = records[-1]["seq"]
        return SinkBatch(GATEWAY, records)


async def node_at(client: Client, namespace_uri: str, *names: str) -> Node:
    """The node at a browse path below Objects, every name in the sink's namespace."""
    ns = await client.get_namespace_index(namespace_uri)
    return await client.nodes.objects.get_child([f"{ns}:{name}" for name in names])


async def read(client: Client, node: Node) -> ua.DataValue:
    """One Read of a node's Value with both timestamps, as a SCADA poll does."""
    params = ua.ReadParameters()
    params.TimestampsToReturn = ua.TimestampsToReturn.Both
    rv = ua.ReadValueId()
    rv.NodeId, rv.AttributeId = node.nodeid, ua.AttributeIds.Value
    params.NodesToRead = [rv]
    (result,) = await client.uaclient.read(params)
    return result
