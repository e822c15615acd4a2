"""The HTTP sink against the MES stand-in: per-record answers, bisection, failures as SinkError, tokens."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from device_sims.mes import MesStandIn
from gateway.sinks import Outcome, SinkError, Verdict

from .support import GATEWAY_ID, MakeRecords, MakeSink, batch_of, connected


async def test_an_accepted_batch_is_stored_once_by_key_with_its_idempotency_key(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(8)
    async with connected(make_sink(mes.endpoint)) as sink:
        assert await sink.write(batch_of(records)) is None
    assert mes.sequences(GATEWAY_ID) == list(range(1, 9))
    assert mes.records(GATEWAY_ID) == records  # byte-for-byte what the journal holds, hashes checked
    assert mes.idempotency_keys == [f"{GATEWAY_ID}:1-8"]
    assert (mes.requests, mes.received, mes.duplicates) == (1, 8, 0)


async def test_a_resent_batch_is_answered_duplicate_and_counts_as_accepted(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(6)
    async with connected(make_sink(mes.endpoint)) as sink:
        assert await sink.write(batch_of(records[:4])) is None
        assert await sink.write(batch_of(records, attempt=2)) is None  # 1-4 again, 5-6 new
    assert mes.sequences(GATEWAY_ID) == [1, 2, 3, 4, 5, 6]
    assert (mes.received, mes.duplicates) == (10, 4)
    assert mes.idempotency_keys == [f"{GATEWAY_ID}:1-4", f"{GATEWAY_ID}:1-6"]


async def test_a_record_the_mes_rejects_gets_its_reason_and_the_others_are_accepted(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(5)
    mes.reject(seqs=[3], reason="parameter particles_5_0um is not in the recipe")
    async with connected(make_sink(mes.endpoint)) as sink:
        outcomes = await sink.write(batch_of(records))
    assert outcomes is not None
    assert [o.verdict for o in outcomes] == [Verdict.ACCEPTED] * 2 + [Verdict.REJECTED] + [Verdict.ACCEPTED] * 2
    assert outcomes[2] == Outcome.rejected("parameter particles_5_0um is not in the recipe")
    assert mes.sequences(GATEWAY_ID) == [1, 2, 4, 5]


async def test_a_400_without_results_is_bisected_until_the_one_poison_record_is_alone(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(8)
    records[4] = records[4] | {"value": 99999.0}  # seq 5 no longer matches its hash: the MES refuses the body
    async with connected(make_sink(mes.endpoint)) as sink:
        outcomes = await sink.write(batch_of(records))
    assert outcomes is not None
    verdicts = [o.verdict for o in outcomes]
    assert verdicts == [Verdict.ACCEPTED] * 4 + [Verdict.REJECTED] + [Verdict.ACCEPTED] * 3
    reason = outcomes[4].reason or ""
    assert reason.startswith("MES answered 400: ") and "seq 5: the record does not match its hash" in reason
    assert len(reason) <= len("MES answered 400: ") + 201
    assert mes.sequences(GATEWAY_ID) == [1, 2, 3, 4, 6, 7, 8]
    keys = [key.split(":")[1] for key in mes.idempotency_keys]
    assert keys == ["1-8", "1-4", "5-8", "5-6", "5-5", "6-6", "7-8"]  # each half is a batch of its own


async def test_a_503_is_a_sink_error_then_the_same_batch_goes_through(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(3)
    mes.fail(503)
    async with connected(make_sink(mes.endpoint)) as sink:
        with pytest.raises(SinkError, match=r"^mes: the MES answered 503: .*injected fault: 503"):
            await sink.write(batch_of(records))
        mes.clear()
        assert await sink.write(batch_of(records, attempt=2)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2, 3]


async def test_fail_with_a_count_lasts_that_many_requests(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    mes.fail(429, count=2)
    async with connected(make_sink(mes.endpoint)) as sink:
        for _ in range(2):
            with pytest.raises(SinkError, match="answered 429"):
                await sink.write(batch_of(records))
        assert await sink.write(batch_of(records)) is None


async def test_an_answer_later_than_timeout_s_is_a_sink_error_and_the_resend_is_a_duplicate(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(4)
    mes.hang(30)
    async with connected(make_sink(mes.endpoint, timeout_s=0.3)) as sink:
        with pytest.raises(SinkError, match=r"^mes: the MES at http://\S+ did not answer within timeout_s=0.3 s$"):
            await sink.write(batch_of(records))
        mes.clear()  # the held request is processed now: the MES took the batch but the answer was lost
        assert await sink.write(batch_of(records, attempt=2)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2, 3, 4]
    assert mes.received == 8 and mes.duplicates == 4


async def test_an_mes_that_is_down_is_a_sink_error_until_it_comes_up_on_the_same_port(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(4)
    port = mes.port
    sink = make_sink(mes.endpoint)
    async with connected(sink):
        assert await sink.write(batch_of(records[:2])) is None  # a kept-alive connection exists now
        await mes.go_down()
        with pytest.raises(SinkError, match=r"^mes: (cannot connect to|request to) the MES at http://\S+"):
            await sink.write(batch_of(records[2:]))
        await sink.close()  # what the forwarder does after a SinkError
        await sink.connect()
        with pytest.raises(SinkError, match=r"^mes: cannot connect to the MES at http://\S+: Connection refused$"):
            await sink.write(batch_of(records[2:]))
        await mes.come_up()
        assert mes.port == port
        assert await sink.write(batch_of(records[2:])) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2, 3, 4]


async def test_go_down_for_a_while_comes_back_by_itself(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    await mes.go_down(for_s=0.2)
    assert not mes.is_up
    async with connected(make_sink(mes.endpoint, timeout_s=2)) as sink:
        with pytest.raises(SinkError, match="Connection refused"):
            await sink.write(batch_of(records))
        deadline = time.monotonic() + 10
        while not mes.is_up:
            assert time.monotonic() < deadline, "the stand-in did not come back"
            await asyncio.sleep(0.02)
        assert await sink.write(batch_of(records)) is None


async def test_without_a_token_the_mes_answers_401_and_the_error_says_what_to_check(
    make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    async with MesStandIn(token="s3cret") as mes, connected(make_sink(mes.endpoint)) as sink:
        with pytest.raises(SinkError) as error:
            await sink.write(batch_of(records))
    assert str(error.value) == (
        "mes: the MES refused the credentials (401): check the token: none is configured "
        "(bearer_token_env or bearer_token_file)"
    )
    assert mes.records() == []


async def test_a_wrong_token_from_the_environment_is_refused(
    make_sink: MakeSink, make_records: MakeRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await make_records(2)
    monkeypatch.setenv("MES_TOKEN", "not-it")
    async with (
        MesStandIn(token="s3cret") as mes,
        connected(make_sink(mes.endpoint, bearer_token_env="MES_TOKEN")) as sink,
    ):
        with pytest.raises(SinkError, match=r"^mes: the MES refused the credentials \(401\): check bearer_token_env$"):
            await sink.write(batch_of(records))


async def test_the_token_comes_from_the_environment(
    make_sink: MakeSink, make_records: MakeRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await make_records(2)
    monkeypatch.setenv("MES_TOKEN", "s3cret")
    async with (
        MesStandIn(token="s3cret") as mes,
        connected(make_sink(mes.endpoint, bearer_token_env="MES_TOKEN")) as sink,
    ):
        assert await sink.write(batch_of(records)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2]


async def test_the_token_comes_from_a_file_relative_to_the_site_file(
    tmp_path: Path, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mes.token").write_text("s3cret\n", encoding="utf-8")
    async with (
        MesStandIn(token="s3cret") as mes,
        connected(make_sink(mes.endpoint, bearer_token_file="secrets/mes.token")) as sink,
    ):
        assert await sink.write(batch_of(records)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2]


async def test_a_missing_token_variable_or_file_is_a_sink_error_at_connect(
    tmp_path: Path, make_sink: MakeSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MES_TOKEN_UNSET", raising=False)
    sink = make_sink("http://127.0.0.1:9/records", bearer_token_env="MES_TOKEN_UNSET")
    with pytest.raises(SinkError, match=r"^mes: environment variable MES_TOKEN_UNSET \(bearer_token_env\) is not set"):
        await sink.connect()
    sink = make_sink("http://127.0.0.1:9/records", bearer_token_file="nowhere/mes.token")
    with pytest.raises(SinkError, match=rf"^mes: cannot read bearer_token_file {tmp_path}/nowhere/mes.token: No such"):
        await sink.connect()
    await sink.close()


async def test_a_wrong_path_is_a_sink_error_not_a_reason_to_reject_records(
    mes: MesStandIn, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(4)
    async with connected(make_sink(mes.endpoint.replace("/records", "/recrods"))) as sink:
        with pytest.raises(SinkError, match=r"/recrods is not the MES records endpoint \(404\): check url$"):
            await sink.write(batch_of(records))
    assert mes.requests == 0
