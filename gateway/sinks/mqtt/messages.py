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

import orjson

from gateway.sinks.base import WireRecord
from gateway.sinks.mqtt.config import MqttSinkConfig
from gateway.sinks.mqtt.topics import records_topic, topic
from gateway.sinks.wire import UNKNOWN, StoredRecords, member, span


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    #: Index in the batch of the first record the message carries, and of the one after its last.
    start: int
    stop: int


#: Topics by the JSON text of the members they are made of (see :func:`_topics`); the sink keeps one.
TopicCache = dict[tuple[bytes | None, ...], str]
_TOPIC_CACHE_SIZE = 50_000


def plan(
    records: Sequence[WireRecord], config: MqttSinkConfig, gateway_id: str, known: TopicCache | None = None
) -> tuple[list[Message], dict[int, str]]:
    """The messages that carry ``records``, in order, and why any record cannot go (index → reason).

    ``known`` remembers topics from one write to the next (a sink's tags repeat every scan).
    """
    prefix = config.topic_prefix
    rejected: dict[int, str] = {}
    encoded: list[tuple[int, str, bytes]] = []
    batched = config.payload == "json-batch"
    if batched and config.batch_topic == "gateway":
        stream = records_topic(prefix, gateway_id)
        where: Callable[[int], str] = lambda i: stream  # noqa: E731
    else:
        levels = ("isa95", "equipment_id") if batched else ("isa95", "equipment_id", "parameter")
        where = _topics(records, prefix, levels, {} if known is None else known)
    json = records.json if isinstance(records, StoredRecords) else lambda i: orjson.dumps(records[i])
    for i in range(len(records)):
        try:
            payload = json(i)
        except (TypeError, AttributeError) as exc:  # a dict holding something JSON cannot: a bug upstream
            rejected[i] = f"seq {records[i].get('seq')}: cannot encode the record as JSON: {exc}"
            continue
        encoded.append((i, where(i), payload))
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


def _topics(
    records: Sequence[WireRecord], prefix: str, names: tuple[str, ...], known: TopicCache
) -> Callable[[int], str]:
    """The topic of record ``i`` from its members ``names`` (the ISA-95 path first).

    Records as stored are read from their bytes, and a topic is remembered by the members' JSON
    text (:func:`~gateway.sinks.wire.span`): reading and building it again costs more than
    publishing a record of a batched message.
    """
    if not isinstance(records, StoredRecords):
        return lambda i: topic(prefix, *[records[i].get(name) for name in names])
    if len(known) > _TOPIC_CACHE_SIZE:
        known.clear()

    def where(i: int) -> str:
        payload = records.payload(i)
        key = tuple([span(payload, name) for name in names])
        found = known.get(key)
        if found is not None:
            return found
        values = [member(payload, name) for name in names]
        if UNKNOWN in values:  # escaped or unusual: the decoded record says, and nothing is remembered
            return topic(prefix, *[records.member(i, name) for name in names])
        found = known[key] = topic(prefix, *values)
        return found

    return where
