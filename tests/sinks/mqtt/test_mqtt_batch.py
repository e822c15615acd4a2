"""``payload: json-batch`` through the forwarder to a real Mosquitto and a real consumer: arrays of
consecutive records, per-equipment subscriptions, the size cap, and nothing lost or changed across
broker restarts mid-drain."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path
from gateway.sinks import SinkContext
from gateway.sinks.forwarder import Forwarder
from gateway.sinks.mqtt import MqttSink, MqttSinkConfig
from tests.mosquitto import Mosquitto
from tests.sinks.mqtt.support import GATEWAY_ID, Consumer, consumer, draft, sink_config
from tests.waiting import eventually

SUITE = Isa95Path(site="site-a", area="grade-b", unit="suite-3")
FAST_RETRY = {"initial_s": 0.05, "max_s": 0.2, "jitter": 0}


@contextlib.asynccontextmanager
async def forwarding(journal: Journal, config: MqttSinkConfig) -> AsyncIterator[Forwarder]:
    """The forwarder the runtime would run for this sink entry, until the block ends."""
    forwarder = Forwarder(MqttSink(config, SinkContext(gateway_id=GATEWAY_ID)), config, journal, rng=random.Random(1))
    task = asyncio.create_task(forwarder.run())
    try:
        yield forwarder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def append_runs(journal: Journal, n: int, run: int, start: int = 0, **overrides: Any) -> None:
    """``n`` readings in runs of ``run`` per equipment (pc-0, pc-1, pc-2, pc-0, ...), as device reads append them."""
    await journal.append([
        (draft(i, equipment_id=f"pc-{i // run % 3}", isa95=SUITE, **overrides), f"frame {i}".encode())
        for i in range(start, start + n)
    ])


def committed(journal: Journal) -> dict[int, dict[str, Any]]:
    """The journal's records as wire records by seq (every one is late: committed in 2025)."""
    with JournalReader(journal.path) as reader:
        return {
            seq: orjson.loads(payload) | {"hash": h, "delivery": {"late": True}}
            for seq, payload, _, h in reader.rows(raw=False)
        }


def arrays(sub: Consumer) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each record message the consumer received: its topic and the records of its array."""
    return [(m.topic, m.body) for m in sub.messages if "/_gateways/" not in m.topic or m.topic.endswith("/records")]


def received(sub: Consumer) -> list[dict[str, Any]]:
    return [record for _, body in arrays(sub) for record in body]


async def test_records_arrive_as_arrays_of_consecutive_records_on_their_equipment_topic(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = sink_config(mosquitto, payload="json-batch", max_records_per_message=3, retry=FAST_RETRY)
    async with Journal.open(tmp_path / "j.sqlite", gateway_id=GATEWAY_ID) as journal:
        await append_runs(journal, 24, run=4)
        async with (
            consumer(mosquitto) as everything,
            consumer(mosquitto, "cgt/site-a/grade-b/suite-3/pc-1/#", "pc-1-only") as pc1,
            forwarding(journal, config) as forwarder,
        ):
            await eventually(lambda: forwarder.status.cursor == 24, timeout_s=10, what="the journal drained")
            await everything.wait_for(lambda: len(received(everything)) >= 24, what="24 records")
            await pc1.wait_for(lambda: len(received(pc1)) >= 8, what="pc-1's 8 records")
        records = committed(journal)

    got = arrays(everything)
    assert all(isinstance(body, list) for _, body in got)
    # runs of 4 per equipment, at most 3 per message: [1,2,3] [4] [5,6,7] [8] ...
    assert [[r["seq"] for r in body] for _, body in got] == [
        seqs for k in range(6) for seqs in ([4 * k + 1, 4 * k + 2, 4 * k + 3], [4 * k + 4])
    ]
    for topic, body in got:
        assert {topic} == {f"cgt/site-a/grade-b/suite-3/{r['equipment_id']}" for r in body}
        assert body == [records[r["seq"]] for r in body]  # the wire records themselves, hash and all
    assert sorted(r["seq"] for r in received(pc1)) == [s for s, r in records.items() if r["equipment_id"] == "pc-1"]


async def test_a_record_larger_than_the_cap_goes_alone(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = sink_config(mosquitto, payload="json-batch", batch_topic="gateway", max_message_bytes=4096,
                         retry=FAST_RETRY)
    async with Journal.open(tmp_path / "j.sqlite", gateway_id=GATEWAY_ID) as journal:
        await append_runs(journal, 10, run=10)
        await journal.append([(draft(10, equipment_id="pc-0", isa95=SUITE, detail="x" * 8000), b"frame 10")])
        await append_runs(journal, 10, run=10, start=11)
        async with consumer(mosquitto) as sub, forwarding(journal, config) as forwarder:
            await eventually(lambda: forwarder.status.cursor == 21, timeout_s=10, what="the journal drained")
            await sub.wait_for(lambda: len(received(sub)) >= 21, what="21 records")

    sizes = {tuple(r["seq"] for r in m.body): len(m.payload) for m in sub.messages if m.topic.endswith("/records")}
    assert (11,) in sizes and sizes[(11,)] > 8000  # alone, although larger than the cap
    assert all(size <= 4096 for seqs, size in sizes.items() if seqs != (11,))
    assert [s for seqs in sizes for s in seqs] == list(range(1, 22))  # all of them, in order


async def test_broker_restarts_mid_drain_lose_nothing_and_change_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = sink_config(mosquitto, payload="json-batch", batch_topic="gateway", max_records_per_message=50,
                         retry=FAST_RETRY)
    chunk, cycles = 3000, 2
    async with Journal.open(tmp_path / "j.sqlite", gateway_id=GATEWAY_ID) as journal:
        async with consumer(mosquitto) as sub, forwarding(journal, config) as forwarder:
            for _ in range(cycles):
                done = journal.last_seq
                await append_runs(journal, chunk, run=8, start=done)
                await eventually(lambda d=done: forwarder.status.cursor > d, timeout_s=10, what="the drain started")
                failures = forwarder.status.failures
                await asyncio.to_thread(mosquitto.stop)
                # committed while the broker is away: the forwarder has records to send and cannot
                await append_runs(journal, chunk, run=8, start=journal.last_seq)
                await eventually(lambda f=failures: forwarder.status.failures > f, timeout_s=10, what="a failed write")
                await asyncio.to_thread(mosquitto.start)
            total = journal.last_seq
            await eventually(lambda: forwarder.status.cursor == total, timeout_s=30, what="the journal drained")
            await sub.wait_for(lambda: {r["seq"] for r in received(sub)} >= set(range(1, total + 1)), what="every seq")
        records = committed(journal)

    copies = received(sub)
    assert sub.sessions >= cycles + 1  # the consumer lived through every restart
    assert sorted({r["seq"] for r in copies}) == list(range(1, total + 1))  # nothing lost
    assert all(r == records[r["seq"]] for r in copies)  # a resent record is the same record, never another
    first_seen: list[int] = []
    for r in copies:
        if not first_seen or r["seq"] > first_seen[-1]:
            first_seen.append(r["seq"])
    assert first_seen == list(range(1, total + 1))  # one ordered stream: new records only ever come next
    print(f"\njson-batch, {cycles} broker restarts mid-drain: {len(copies) - total} duplicates of {total} records, "
          f"{forwarder.status.failures} failed writes")
