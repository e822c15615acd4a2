"""The MQTT sink when the broker goes away: readable errors, an honest accepted prefix, nothing lost."""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

import pytest

from gateway.sinks import Outcome, SinkError, Verdict
from gateway.sinks.mqtt import MqttSink
from tests.mosquitto import Mosquitto
from tests.sinks.mqtt.support import WireRecords, batch, consumer, make_sink
from tests.waiting import eventually


async def test_connect_to_a_stopped_broker_is_one_readable_line(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    sink = make_sink(mosquitto)
    with pytest.raises(SinkError) as caught:
        await sink.connect()
    message = str(caught.value)
    assert message.startswith(f"MQTT broker 127.0.0.1:{mosquitto.port} refused the connection:"), message
    assert "\n" not in message and "is it running" in message
    with pytest.raises(SinkError, match="not connected"):
        await sink.write(batch([{"seq": 1}]))
    await sink.close()  # nothing to close: still fine


def _settled_prefix(outcomes: list[Outcome], size: int) -> int:
    """How many leading records were accepted; asserts that every record after them is a retry."""
    verdicts = [o.verdict for o in outcomes]
    assert len(verdicts) == size
    accepted = verdicts.index(Verdict.RETRY) if Verdict.RETRY in verdicts else size
    assert verdicts[:accepted] == [Verdict.ACCEPTED] * accepted
    assert verdicts[accepted:] == [Verdict.RETRY] * (size - accepted)
    return accepted


async def test_broker_stopped_mid_batch_accepts_only_what_it_acknowledged(
    mosquitto: Mosquitto, wire_records: WireRecords
) -> None:
    records = await wire_records(20_000)  # long enough that the stop lands mid-batch on a fast machine too
    sink = make_sink(mosquitto)
    async with consumer(mosquitto) as sub:
        await sink.connect()
        try:
            writing = asyncio.create_task(sink.write(batch(records)))
            await sub.wait_for(lambda: len(sub.records()) >= 1000, what="1000 records before the stop")
            await asyncio.to_thread(mosquitto.stop)
            try:
                outcomes = await writing
            except SinkError as exc:  # legitimate only if the broker acknowledged nothing
                pytest.fail(f"1000 records had arrived, so some were acknowledged: {exc}")
            assert outcomes is not None
            accepted = _settled_prefix(list(outcomes), len(records))
            assert 1000 <= accepted < len(records)
            assert "MQTT broker" in (outcomes[accepted].reason or "")
            with pytest.raises(SinkError, match="connection lost"):  # so the forwarder reconnects
                await sink.write(batch(records[accepted:]))
        finally:
            await sink.close()
        with pytest.raises(SinkError, match="refused the connection"):
            await sink.connect()

        # Everything the broker acknowledged survives its (clean) restart and reaches the consumer.
        await asyncio.to_thread(mosquitto.start)
        await sub.wait_for(
            lambda: {b["seq"] for b in sub.records()} >= set(range(1, accepted + 1)),
            what=f"the {accepted} acknowledged records after the restart",
        )


async def test_a_frozen_broker_is_noticed_within_the_publish_timeout(
    mosquitto: Mosquitto, wire_records: WireRecords
) -> None:
    records = await wire_records(50)
    sink = make_sink(mosquitto, publish_timeout_s=0.5)
    await sink.connect()
    assert mosquitto.process is not None
    mosquitto.process.send_signal(signal.SIGSTOP)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(SinkError, match="no acknowledgement in time"):
            await sink.write(batch(records))
        assert asyncio.get_running_loop().time() - started < 3
        with pytest.raises(SinkError):  # in doubt: the forwarder must reconnect before sending more
            await sink.write(batch(records))
    finally:
        mosquitto.process.send_signal(signal.SIGCONT)
        await sink.close()


async def _deliver_all(
    sink: MqttSink, records: list[dict[str, Any]], size: int, timeout_s: float, stats: dict[str, int] | None = None
) -> dict[str, int]:
    """What the forwarder does, in small: send in batches; on SinkError close, reconnect and resend.

    ``stats["position"]`` is how many records are settled so far, for a test to act mid-stream.
    """
    stats = stats if stats is not None else {}
    stats.update(connects=0, retries=0, position=0)
    deadline = asyncio.get_running_loop().time() + timeout_s
    position = 0
    while position < len(records):
        assert asyncio.get_running_loop().time() < deadline, f"stuck at record {position}"
        chunk = records[position : position + size]
        try:
            if not sink.connected:
                await sink.connect()
                stats["connects"] += 1
            outcomes = await sink.write(batch(chunk))
        except SinkError:
            await sink.close()
            await asyncio.sleep(0.05)  # the forwarder's backoff, short for the test
            continue
        accepted = len(chunk) if outcomes is None else _settled_prefix(list(outcomes), len(chunk))
        stats["retries"] += len(chunk) - accepted
        position += accepted
        stats["position"] = position
    return stats


async def test_broker_restarts_mid_stream_lose_nothing(mosquitto: Mosquitto, wire_records: WireRecords) -> None:
    n = 12_000  # long enough that both restarts land mid-stream on a fast machine too
    records = await wire_records(n)
    sink = make_sink(mosquitto)
    async with consumer(mosquitto) as sub:

        progress: dict[str, int] = {"position": 0}

        async def restart_twice() -> None:
            for sent in (2000, 6000):  # by the writer's progress: the consumer may lag far behind it
                await eventually(lambda sent=sent: progress["position"] >= sent, timeout_s=20, what=f"{sent} sent")
                await asyncio.to_thread(mosquitto.restart)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(restart_twice())
                writer = group.create_task(_deliver_all(sink, records, size=250, timeout_s=40, stats=progress))
        finally:
            await sink.close()
        await sub.wait_for(lambda: {b["seq"] for b in sub.records()} >= set(range(1, n + 1)), what="every seq")

    stats = writer.result()
    received = [b["seq"] for b in sub.records()]
    assert stats["connects"] >= 3 and sub.sessions >= 3  # both restarts were really lived through
    assert sorted(set(received)) == list(range(1, n + 1))  # dedupe by (gateway_id, seq) gives exactly what was sent
    by_seq = {b["seq"]: b for b in sub.records()}
    assert all(by_seq[r["seq"]] == r for r in records)
    print(f"\nbroker restarted twice: {stats}, {len(received) - n} duplicates at the consumer")


async def test_a_listener_that_never_answers_fails_connect_within_its_timeout() -> None:
    with socket.socket() as silent:  # takes TCP connections (listen backlog) but never speaks MQTT
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        sink = make_sink(silent.getsockname(), connect_timeout_s=0.5)
        started = asyncio.get_running_loop().time()
        with pytest.raises(SinkError, match=r"did not accept the connection within 0\.5 s"):
            await sink.connect()
        assert asyncio.get_running_loop().time() - started < 3
        # Nothing of the failed attempt keeps running while the silent peer still holds the connection.
        await asyncio.sleep(0)  # let a cancelled task finish
        left = [t for t in asyncio.all_tasks() if "_misc_loop" in repr(t.get_coro()) and not t.done()]
        assert not left
        await sink.close()
