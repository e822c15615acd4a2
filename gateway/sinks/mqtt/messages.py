"""What one write publishes: a batch's records as MQTT messages, in seq order. Pure: no I/O.

``payload: json`` makes one message per record, on its parameter's topic. ``payload: json-batch``
makes each message a JSON array of *consecutive* records that share a topic (``batch_topic``), at
most ``max_records_per_message`` of them and ``max_message_bytes`` of payload; a record that alone
is larger than the cap still goes, alone. Because a message holds consecutive records and messages
go out in order, the messages a broker acknowledged before the first it did not cover exactly a
prefix of the batch: those records are accepted and the rest are sent again, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.sinks.base import WireRecord
from gateway.sinks.mqtt.config import MqttSinkConfig
from gateway.sinks.mqtt.topics import records_topic, topic
from gateway.sinks.wire import StoredRecords


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    #: Index in the batch of the first record the message carries, and of the one after its last.
    start: int
    stop: int


def plan(
    records: Sequence[WireRecord], config: MqttSinkConfig, gateway_id: str
) -> tuple[list[Message], dict[int, str]]:
    """The messages that carry ``records``, in order, and why any record cannot go (index → reason)."""
    prefix = config.topic_prefix
    rejected: dict[int, str] = {}
    encoded: list[tuple[int, str, bytes]] = []
    field, json = _access(records)
    batched = config.payload == "json-batch"
    stream = records_topic(prefix, gateway_id) if batched and config.batch_topic == "gateway" else None
    for i in range(len(records)):
        try:
            payload = json(i)
        except (TypeError, AttributeError) as exc:  # a dict holding something JSON cannot: a bug upstream
            rejected[i] = f"seq {field(i, 'seq')}: cannot encode the record as JSON: {exc}"
            continue
        if stream is not None:
            where = stream
        elif batched:
            where = topic(prefix, field(i, "isa95"), field(i, "equipment_id"))
        else:
            where = topic(prefix, field(i, "isa95"), field(i, "equipment_id"), field(i, "parameter"))
        encoded.append((i, where, payload))
    if not batched:
        return [Message(where, payload, i, i + 1) for i, where, payload in encoded], rejected
    return _group(encoded, config.max_records_per_message, config.max_message_bytes), rejected


def _group(encoded: list[tuple[int, str, bytes]], max_records: int, max_bytes: int) -> list[Message]:
    """Consecutive records of one topic as JSON arrays within the count and size caps."""
    messages: list[Message] = []
    parts: list[bytes] = []
    current, start, stop, size = "", 0, 0, 0

    def close() -> None:
        messages.append(Message(current, b"[" + b",".join(parts) + b"]", start, stop))

    for i, where, payload in encoded:
        if parts and (where != current or len(parts) >= max_records or size + 1 + len(payload) > max_bytes):
            close()
            parts = []
        if not parts:
            current, start, size = where, i, 1  # the brackets, less the first record's comma
        parts.append(payload)
        size += 1 + len(payload)
        stop = i + 1
    if parts:
        close()
    return messages


def _access(records: Sequence[WireRecord]) -> tuple[Callable[[int, str], Any], Callable[[int], bytes]]:
    """How to read a record's member and its JSON: from the stored bytes when the forwarder handed them."""
    if isinstance(records, StoredRecords):
        return records.member, records.json
    return (lambda i, key: records[i].get(key)), (lambda i: orjson.dumps(records[i]))
