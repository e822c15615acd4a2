"""The MES stand-in as an MES: what it refuses, how faults are driven from another process, its port."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from device_sims.mes import MesStandIn
from gateway.sinks import SinkError, Verdict
from tests.simcli import assert_taken_port_refused

from .support import GATEWAY_ID, MakeRecords, MakeSink, batch_of, connected


async def test_reject_by_parameter_refuses_only_those_records(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(4)  # particles_5_0um at seq 1 and 3
    mes.reject(parameters=["particles_5_0um"], reason="not in the MBR")
    async with connected(make_sink(mes.endpoint)) as sink:
        outcomes = await sink.write(batch_of(records))
    assert outcomes is not None
    assert [o.verdict for o in outcomes] == [Verdict.REJECTED, Verdict.ACCEPTED] * 2
    assert mes.sequences(GATEWAY_ID) == [2, 4]


async def test_a_body_without_idempotency_key_or_with_bad_json_is_a_400_with_the_reason(mes: MesStandIn) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(mes.endpoint, data=b"{}") as answer:
            assert answer.status == 400
            assert (await answer.json()) == {"error": "the Idempotency-Key header is required"}
        async with http.post(mes.endpoint, data=b"{not json", headers={"Idempotency-Key": "k"}) as answer:
            assert answer.status == 400 and (await answer.json())["error"].startswith("the body is not JSON")
        async with http.post(mes.endpoint, json={"gateway_id": "g"}, headers={"Idempotency-Key": "k"}) as answer:
            assert (await answer.json())["error"] == "the body lacks first_seq, last_seq, attempt, sent_at, records"
    assert mes.records() == [] and mes.requests == 3


async def test_control_endpoint_rejects_and_takes_the_endpoint_down_for_a_while(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    control = f"http://{mes.host}:{mes.port}/_control"
    async with aiohttp.ClientSession() as http:
        async with http.post(control, json={"action": "reject", "seqs": [2], "reason": "held by QA"}) as answer:
            assert answer.status == 200
        async with http.post(control, json={"action": "explode"}) as answer:
            assert answer.status == 400 and "unknown action 'explode'" in (await answer.json())["error"]
        async with http.post(control, json={"action": "go_down"}) as answer:
            assert answer.status == 400 and "needs for_s" in (await answer.json())["error"]
        async with connected(make_sink(mes.endpoint, timeout_s=2)) as sink:
            outcomes = await sink.write(batch_of(records))
            assert outcomes is not None and outcomes[1].reason == "held by QA"
            async with http.post(control, json={"action": "clear"}) as answer:
                assert answer.status == 200
            async with http.post(control, json={"action": "go_down", "for_s": 0.3}) as answer:
                assert answer.status == 200
            deadline = time.monotonic() + 10
            while mes.is_up:
                assert time.monotonic() < deadline, "the stand-in did not go down"
                await asyncio.sleep(0.01)
            await sink.close()
            await sink.connect()
            with pytest.raises(SinkError, match="Connection refused"):
                await sink.write(batch_of(records))
            while not mes.is_up:
                assert time.monotonic() < deadline, "the stand-in did not come back"
                await asyncio.sleep(0.02)
            assert await sink.write(batch_of(records)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2]


async def test_a_taken_port_is_a_simulator_error() -> None:
    await assert_taken_port_refused(lambda port: MesStandIn(port=port))


async def test_a_restarted_standin_remembers_what_its_file_holds_and_answers_duplicate(
    tmp_path: Path, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(4)
    received = tmp_path / "received.jsonl"
    async with MesStandIn(jsonl_path=received) as first, connected(make_sink(first.endpoint)) as sink:
        assert await sink.write(batch_of(records[:3])) is None
    with received.open("ab") as torn:  # a kill mid-append leaves half a line
        torn.write(b'{"seq": 9')
    async with MesStandIn(jsonl_path=received) as again, connected(make_sink(again.endpoint)) as sink:
        assert await sink.write(batch_of(records, attempt=2)) is None
        assert (again.received, again.duplicates) == (4, 3)
        assert again.sequences(GATEWAY_ID) == [1, 2, 3, 4]
    taken = [line for line in received.read_bytes().splitlines() if line.endswith(b"}")]
    assert [orjson.loads(line)["seq"] for line in taken] == [1, 2, 3, 4]  # each record once in the file
