"""The MQTT sink against a real Mosquitto with a real consumer: topics, payloads, status, volume, order."""

from __future__ import annotations

import time
from collections import defaultdict

import orjson

from gateway.sinks import Verdict
from tests.mosquitto import Mosquitto
from tests.sinks.mqtt.support import GATEWAY_ID, CuttableProxy, WireRecords, batch, consumer, draft, make_sink

STATUS = f"cgt/_gateways/{GATEWAY_ID}/status"


async def test_records_land_on_their_isa95_topic_with_the_record_as_payload(
    mosquitto: Mosquitto, wire_records: WireRecords
) -> None:
    from gateway.records import Isa95Path

    odd = draft(0, isa95=Isa95Path(site="site a", area="grade+b", unit="suite/3#"), equipment_id="pc#1", parameter="")
    records = await wire_records(drafts=[draft(0), draft(1), draft(2), odd, draft(5, parameter="flow_rate")])
    sink = make_sink(mosquitto)
    async with consumer(mosquitto) as sub:
        await sink.connect()
        try:
            assert await sink.write(batch(records)) is None
        finally:
            await sink.close()
        await sub.wait_for(lambda: len(sub.records()) == 5, what="5 records")

    got = {m.body["seq"]: m for m in sub.messages if "/_gateways/" not in m.topic}
    assert [got[s].topic for s in (1, 2, 3, 4, 5)] == [
        "cgt/site-a/grade-b/suite-3/pc-0/particles_0_5um",
        "cgt/site-a/grade-a/isolator-1/pc-1/particles_0_5um",
        "cgt/_unassigned/_unassigned/_unassigned/pc-2/particles_0_5um",
        "cgt/site a/grade_b/suite_3_/pc_1/_",
        "cgt/_unassigned/_unassigned/_unassigned/pc-2/flow_rate",
    ]
    for record in records:  # the payload is the wire record itself: hash, delivery and key included
        assert got[record["seq"]].body == record
        assert got[record["seq"]].payload == orjson.dumps(record)
    assert {m.retain for m in got.values()} == {False}


async def test_birth_is_retained_online_and_a_clean_close_leaves_offline(mosquitto: Mosquitto) -> None:
    sink = make_sink(mosquitto)
    await sink.connect()
    try:
        async with consumer(mosquitto, STATUS, "late-joiner") as sub:  # subscribes after the birth
            await sub.wait_for(lambda: len(sub.messages) >= 1, what="the retained birth")
            birth = sub.messages[0]
            assert birth.retain and birth.body["status"] == "online" and birth.body["gateway_id"] == GATEWAY_ID
            assert birth.body["time"].endswith("Z")
    finally:
        await sink.close()
    await sink.close()  # idempotent

    async with consumer(mosquitto, STATUS, "later-joiner") as sub:
        await sub.wait_for(lambda: len(sub.messages) >= 1, what="the retained status")
    assert sub.messages[0].retain
    assert sub.messages[0].body | {"time": None} == {
        "status": "offline",
        "gateway_id": GATEWAY_ID,
        "time": None,
        "reason": "closed",
    }


async def test_a_lost_connection_leaves_the_retained_last_will_offline(mosquitto: Mosquitto) -> None:
    async with CuttableProxy((mosquitto.host, mosquitto.port)) as link, consumer(mosquitto, STATUS) as sub:
        sink = make_sink(("127.0.0.1", link.port), keepalive_s=5)
        await sink.connect()
        try:
            await sub.wait_for(lambda: any(m.body["status"] == "online" for m in sub.messages), what="birth")
            link.cut()  # no DISCONNECT reaches the broker: it must publish the will
            await sub.wait_for(lambda: sub.messages[-1].body["status"] == "offline", what="the last will")
        finally:
            await sink.close()
    will = sub.messages[-1].body
    assert will["reason"] == "connection lost" and will["gateway_id"] == GATEWAY_ID and will["online_since"]

    async with consumer(mosquitto, STATUS, "after-the-loss") as late:  # retained for consumers joining later
        await late.wait_for(lambda: len(late.messages) >= 1, what="the retained will")
    assert late.messages[0].retain and late.messages[0].body["status"] == "offline"


async def test_2000_records_arrive_complete_and_in_order_per_topic(
    mosquitto: Mosquitto, wire_records: WireRecords
) -> None:
    records = await wire_records(2000)
    sink = make_sink(mosquitto)
    async with consumer(mosquitto) as sub:
        await sink.connect()
        try:
            started = time.perf_counter()
            results = [await sink.write(batch(records[i : i + 500])) for i in range(0, 2000, 500)]
            elapsed = time.perf_counter() - started
        finally:
            await sink.close()
        await sub.wait_for(lambda: len(sub.records()) >= 2000, what="2000 records")

    assert results == [None] * 4
    bodies = sub.records()
    assert sorted(b["seq"] for b in bodies) == list(range(1, 2001))  # complete, nothing twice
    per_topic: dict[str, list[int]] = defaultdict(list)
    for message in sub.messages:
        if "/_gateways/" not in message.topic:
            per_topic[message.topic].append(message.body["seq"])
    assert len(per_topic) == 9
    for topic, seqs in per_topic.items():
        assert seqs == sorted(seqs), f"{topic} out of order"
    print(f"\nMQTT sink: 2000 QoS 1 records acknowledged in {elapsed:.2f} s ({2000 / elapsed:.0f} records/s)")


async def test_retain_last_keeps_each_parameters_last_value_for_new_consumers(
    mosquitto: Mosquitto, wire_records: WireRecords
) -> None:
    records = await wire_records(18)  # two values of each of the 9 equipment/parameter topics
    sink = make_sink(mosquitto, retain_last=True, qos=2)
    await sink.connect()
    try:
        outcomes = await sink.write(batch(records))
    finally:
        await sink.close()
    assert outcomes is None
    async with consumer(mosquitto, "cgt/site-a/#", "dashboard") as sub:
        await sub.wait_for(lambda: len(sub.messages) >= 6, what="6 retained values")
    assert {m.body["seq"] for m in sub.messages} == {r["seq"] for r in records[9:] if r["isa95"]}
    assert all(m.retain for m in sub.messages)


async def test_a_record_that_cannot_be_encoded_is_rejected_and_the_rest_delivered(
    mosquitto: Mosquitto, wire_records: WireRecords
) -> None:
    records = await wire_records(3)
    records[1] = records[1] | {"value": object()}  # not JSON: only a bug upstream could do this
    sink = make_sink(mosquitto)
    async with consumer(mosquitto) as sub:
        await sink.connect()
        try:
            outcomes = await sink.write(batch(records))
        finally:
            await sink.close()
        await sub.wait_for(lambda: len(sub.records()) >= 2, what="2 records")
    assert outcomes is not None
    assert [o.verdict for o in outcomes] == [Verdict.ACCEPTED, Verdict.REJECTED, Verdict.ACCEPTED]
    assert "seq 2" in (outcomes[1].reason or "")
    assert sorted(b["seq"] for b in sub.records()) == [1, 3]
