"""Which messages a write publishes (pure): one per record, or arrays of consecutive records within the caps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, utc_now
from gateway.sinks.mqtt import MqttSinkConfig, equipment_topic, record_topic, records_topic
from gateway.sinks.mqtt.messages import Message, plan
from gateway.sinks.wire import StoredRecord, StoredRecords
from tests.sinks.mqtt.support import GATEWAY_ID, WireRecords, draft

SUITE = Isa95Path(site="site-a", area="grade-b", unit="suite-3")


def config(**fields: Any) -> MqttSinkConfig:
    return MqttSinkConfig.model_validate({"name": "uns", "type": "mqtt", "host": "127.0.0.1"} | fields)


def runs(*lengths: int, **overrides: Any) -> list[Any]:
    """Drafts in runs of one equipment each: pc-0 ``lengths[0]`` times, then pc-1, and so on."""
    equipment = [f"pc-{k}" for k, n in enumerate(lengths) for _ in range(n)]
    return [draft(i, equipment_id=e, isa95=SUITE, **overrides) for i, e in enumerate(equipment)]


def arrays(messages: list[Message]) -> list[list[int]]:
    return [[r["seq"] for r in orjson.loads(m.payload)] for m in messages]


async def stored(path: Path, drafts: list[Any]) -> StoredRecords:
    """The records as the forwarder hands them to this sink (as stored, not decoded)."""
    async with Journal.open(path, gateway_id=GATEWAY_ID) as journal:
        await journal.append([(d, f"frame {i}".encode()) for i, d in enumerate(drafts)])  # as wire_records does
    with JournalReader(path) as reader:
        rows = [StoredRecord(seq, p, h, utc_now()) for seq, p, _, h in reader.rows(raw=False)]
    return StoredRecords(rows, [False] * len(rows))


async def test_json_is_one_message_per_record_on_its_parameter_topic(wire_records: WireRecords) -> None:
    records = await wire_records(6)
    messages, rejected = plan(records, config(), GATEWAY_ID)
    assert not rejected
    assert [(m.topic, m.payload, m.start, m.stop) for m in messages] == [
        (record_topic("cgt", r), orjson.dumps(r), i, i + 1) for i, r in enumerate(records)
    ]


async def test_json_batch_groups_consecutive_records_of_one_equipment_on_its_topic(
    wire_records: WireRecords, tmp_path: Path
) -> None:
    drafts = runs(3, 1, 4, 2)  # pc-0 ×3, pc-1, pc-2 ×4, pc-3 ×2
    records = await wire_records(drafts=drafts)
    cfg = config(payload="json-batch", max_records_per_message=3)
    messages, rejected = plan(records, cfg, GATEWAY_ID)
    assert not rejected
    assert arrays(messages) == [[1, 2, 3], [4], [5, 6, 7], [8], [9, 10]]
    assert [(m.start, m.stop) for m in messages] == [(0, 3), (3, 4), (4, 7), (7, 8), (8, 10)]
    assert [m.topic for m in messages] == [equipment_topic("cgt", records[m.start]) for m in messages]
    assert messages[0].topic == "cgt/site-a/grade-b/suite-3/pc-0"
    assert orjson.loads(messages[2].payload) == records[4:7]  # the wire records themselves
    # the records as the forwarder hands them over make the same messages, byte for byte
    as_stored = await stored(tmp_path / "j.sqlite", drafts)
    assert plan(as_stored, cfg, GATEWAY_ID) == (messages, {})


async def test_json_batch_on_the_gateway_topic_keeps_every_record_in_one_ordered_stream(
    wire_records: WireRecords,
) -> None:
    records = await wire_records(7)  # three equipment, interleaved
    messages, _ = plan(records, config(payload="json-batch", batch_topic="gateway", max_records_per_message=3),
                       GATEWAY_ID)
    assert arrays(messages) == [[1, 2, 3], [4, 5, 6], [7]]
    assert {m.topic for m in messages} == {records_topic("cgt", GATEWAY_ID)} == {"cgt/_gateways/gw-suite-3/records"}


async def test_a_message_stays_within_the_byte_cap_and_a_larger_record_goes_alone(
    wire_records: WireRecords, tmp_path: Path
) -> None:
    drafts = runs(9)
    drafts[4] = draft(4, equipment_id="pc-0", isa95=SUITE, detail="x" * 3000)  # larger than the cap on its own
    records = await wire_records(drafts=drafts)
    largest = max(len(orjson.dumps(r)) for i, r in enumerate(records) if i != 4)
    cfg = config(payload="json-batch", max_message_bytes=2 + 2 * largest + 1 + 20)  # two records fit, not three
    messages, _ = plan(records, cfg, GATEWAY_ID)
    assert arrays(messages) == [[1, 2], [3, 4], [5], [6, 7], [8, 9]]
    assert all(len(m.payload) <= cfg.max_message_bytes for m in messages if m.start != 4)
    assert len(messages[2].payload) > cfg.max_message_bytes
    assert plan(await stored(tmp_path / "j.sqlite", drafts), cfg, GATEWAY_ID) == (messages, {})


@pytest.mark.parametrize("payload", ["json", "json-batch"])
async def test_topics_read_from_stored_bytes_are_the_decoded_records_topics(
    payload: str, wire_records: WireRecords, tmp_path: Path
) -> None:
    """Names a byte scan could misread (braces, quotes, escapes) get their own topics, write after write."""
    odd = [
        Isa95Path(site="s", area="a", unit="c}x"), Isa95Path(site="s", area="a", unit="c}y"),
        Isa95Path(site='s"', area="a", unit="c"), Isa95Path(site="s\\", area="a", unit="c"), SUITE, None,
    ]
    drafts = [draft(i, isa95=odd[i % 6], equipment_id=["pc-1", 'pc-"1', "pc-1\n", "pc-2"][i % 4]) for i in range(24)]
    records = await wire_records(drafts=drafts)
    as_stored = await stored(tmp_path / "j.sqlite", drafts)
    cfg = config(payload=payload, **({"max_records_per_message": 4} if payload == "json-batch" else {}))
    known: dict[tuple[bytes | None, ...], str] = {}
    for start in (0, 12):  # two writes sharing the sink's remembered topics
        assert plan(as_stored[start:start + 12], cfg, GATEWAY_ID, known) == plan(records[start:start + 12], cfg,
                                                                                GATEWAY_ID)
    assert known and all("}" not in topic for topic in known.values())


async def test_a_record_that_cannot_be_encoded_is_left_out_of_the_arrays(wire_records: WireRecords) -> None:
    records = await wire_records(drafts=runs(4))
    records[1] = records[1] | {"value": object()}
    messages, rejected = plan(records, config(payload="json-batch"), GATEWAY_ID)
    assert list(rejected) == [1] and rejected[1].startswith("seq 2: cannot encode the record as JSON")
    assert arrays(messages) == [[1, 3, 4]] and (messages[0].start, messages[0].stop) == (0, 4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_records_per_message": 10}, "max_records_per_message: only for payload: json-batch"),
        ({"batch_topic": "gateway", "max_message_bytes": 5000}, "batch_topic, max_message_bytes: only for"),
        ({"payload": "json-batch", "retain_last": True}, "retain_last needs payload: json"),
        ({"payload": "json-batch", "max_message_bytes": 100}, "greater than or equal to 1024"),
        ({"payload": "sparkplug"}, "'json' or 'json-batch'"),
    ],
)
def test_batch_settings_that_would_not_do_what_they_say_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**fields)


def test_json_batch_defaults() -> None:
    cfg = config(payload="json-batch")
    assert (cfg.batch_topic, cfg.max_records_per_message, cfg.max_message_bytes) == ("equipment", 500, 1_000_000)
