"""Helpers of the MQTT sink tests: realistic drafts, sinks on a broker, a real consumer, a cuttable link.

``Consumer`` is a subscriber with a persistent QoS 1 session that reconnects by itself, as the
sink's README asks of a site's consumers; ``CuttableProxy`` loses a connection the way a network does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import orjson

from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.sinks import SinkBatch, SinkContext
from gateway.sinks.mqtt import MqttSink, MqttSinkConfig
from gateway.sinks.mqtt.sink import _abandon as abandon
from tests.mosquitto import Mosquitto
from tests.relay import Relay

GATEWAY_ID = "gw-suite-3"
_EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
_PATHS = [
    Isa95Path(site="site-a", area="grade-b", unit="suite-3"),
    Isa95Path(site="site-a", area="grade-a", unit="isolator-1"),
    None,
]
_PARAMETERS = ["particles_0_5um", "particles_5_0um", "flow_rate"]


def draft(i: int, **overrides: Any) -> RecordDraft:
    """A realistic particle-counter record: three counters on three ISA-95 paths (one unassigned)."""
    fields: dict[str, Any] = {
        "equipment_id": f"pc-{i % 3}",
        "equipment_class": "particle_counter",
        "isa95": _PATHS[i % 3],
        "parameter": _PARAMETERS[(i // 3) % 3],
        "source": f"modbus+tcp://127.0.0.1:5020/1/input/{30009 + i % 9}",
        "kind": Kind.MEASUREMENT,
        "value": float(i),
        "unit": "/m3",
        "quality": Quality.GOOD,
        "source_time": _EPOCH + timedelta(milliseconds=i),
        "gateway_time": _EPOCH + timedelta(milliseconds=i, microseconds=250),
        "lot_id": "LOT-2025-031",
        "config_hash": "ab" * 32,
    }
    fields.update(overrides)
    return RecordDraft(**fields)


#: ``await wire_records(n)`` (the fixture): committed records exactly as the forwarder sends them.
WireRecords = Callable[..., Awaitable[list[dict[str, Any]]]]


def batch(records: list[dict[str, Any]]) -> SinkBatch:
    return SinkBatch(gateway_id=GATEWAY_ID, records=records)


def sink_config(broker: Mosquitto | tuple[str, int], **fields: Any) -> MqttSinkConfig:
    host, port = (broker.host, broker.port) if isinstance(broker, Mosquitto) else broker
    return MqttSinkConfig.model_validate({"name": "uns", "type": "mqtt", "host": host, "port": port} | fields)


def make_sink(broker: Mosquitto | tuple[str, int], **fields: Any) -> MqttSink:
    return MqttSink(sink_config(broker, **fields), SinkContext(gateway_id=GATEWAY_ID))


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def body(self) -> Any:
        return orjson.loads(self.payload)


class Consumer:
    """A subscriber with a persistent session (clean_session false, QoS 1) that reconnects until closed."""

    def __init__(self, host: str, port: int, topic: str, client_id: str = "test-consumer") -> None:
        self.host, self.port, self.topic, self.client_id = host, port, topic, client_id
        self.messages: list[Received] = []
        self.sessions = 0
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Consumer:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.client_id}")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            client = aiomqtt.Client(self.host, self.port, identifier=self.client_id, clean_session=False, keepalive=5)
            try:
                await client.__aenter__()
            except aiomqtt.MqttError:
                await abandon(client)  # a broker shutting down may take the TCP connection and never answer
                await asyncio.sleep(0.05)  # the broker is restarting: try again (the test bounds the wait)
                continue
            try:
                self.sessions += 1
                await client.subscribe(self.topic, qos=1)
                self._subscribed.set()
                async for message in client.messages:
                    self.messages.append(Received(str(message.topic), bytes(message.payload), message.retain))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)
            finally:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.__aexit__(None, None, None)

    def records(self) -> list[dict[str, Any]]:
        """Bodies of the record messages (everything but gateway status messages)."""
        return [m.body for m in self.messages if "/_gateways/" not in m.topic]

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"consumer: {what or 'condition'} not met within {timeout_s} s")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def consumer(
    broker: Mosquitto, topic: str = "cgt/#", client_id: str = "test-consumer"
) -> AsyncIterator[Consumer]:
    async with Consumer(broker.host, broker.port, topic, client_id) as c:
        yield c


class CuttableProxy(Relay):
    """A TCP relay in front of the broker whose connections can be cut: a network loss, not a clean close."""

    def cut(self) -> None:
        """Abort every relayed connection at once (both sides see a reset, no MQTT DISCONNECT)."""
        self.abort_connections()
