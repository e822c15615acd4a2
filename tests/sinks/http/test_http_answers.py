"""How the sink reads answers the stand-in never gives: an MES of another make, as a real server on port 0.

Each test serves one scripted answer per request from a real aiohttp server and checks what the sink
makes of it; the stand-in covers the common paths in test_http_sink.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from gateway.sinks import Outcome, SinkError, Verdict

from .support import MakeRecords, MakeSink, batch_of, connected

Answer = Callable[[dict[str, Any]], web.Response]


@asynccontextmanager
async def scripted_mes(answer: Answer) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server answering each POST with ``answer(body)``; yields its URL and the bodies seen."""
    bodies: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        bodies.append(body)
        return answer(body)

    app = web.Application()
    app.router.add_post("/records", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/records", bodies
    finally:
        await runner.cleanup()


def _results(*items: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps({"results": list(items)}), status=status, content_type="application/json")


async def test_the_body_is_the_documented_batch(make_sink: MakeSink, make_records: MakeRecords) -> None:
    records = await make_records(3)
    async with scripted_mes(lambda _: web.Response(status=204)) as (url, bodies):
        async with connected(make_sink(url)) as sink:
            assert await sink.write(batch_of(records, attempt=2)) is None
    (body,) = bodies
    assert set(body) == {"gateway_id", "first_seq", "last_seq", "attempt", "sent_at", "records"}
    assert (body["gateway_id"], body["first_seq"], body["last_seq"], body["attempt"]) == ("suite-3", 1, 3, 2)
    assert body["sent_at"].endswith("Z") and body["records"] == records


async def test_seqs_missing_from_the_results_are_retried_with_one_warning(
    make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(4)
    answer = _results({"seq": 1, "status": "accepted"}, {"seq": 2, "status": "duplicate"})
    async with scripted_mes(lambda _: answer) as (url, _), connected(make_sink(url)) as sink:
        with capture_logs() as logs:
            outcomes = await sink.write(batch_of(records))
    assert outcomes == [Outcome.accepted()] * 2 + [Outcome.retry(f"the MES did not answer for seq {s}") for s in (3, 4)]
    warnings = [e for e in logs if e["event"] == "http_sink_results_incomplete"]
    assert len(warnings) == 1 and warnings[0]["missing"] == 2


async def test_retry_and_rejected_results_in_a_422_are_taken_per_record(
    make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(3)
    answer = _results(
        {"seq": 1, "status": "accepted"},
        {"seq": 2, "status": "retry", "reason": "lot LOT-0001 not released yet"},
        {"seq": 3, "status": "rejected", "reason": "unit /m3 unknown"},
        status=422,
    )
    async with scripted_mes(lambda _: answer) as (url, bodies), connected(make_sink(url)) as sink:
        outcomes = await sink.write(batch_of(records))
    assert outcomes == [
        Outcome.accepted(),
        Outcome.retry("lot LOT-0001 not released yet"),
        Outcome.rejected("unit /m3 unknown"),
    ]
    assert len(bodies) == 1  # results given: no bisection


async def test_a_2xx_that_is_not_json_accepts_the_batch(make_sink: MakeSink, make_records: MakeRecords) -> None:
    records = await make_records(2)
    async with scripted_mes(lambda _: web.Response(text="OK")) as (url, _), connected(make_sink(url)) as sink:
        assert await sink.write(batch_of(records)) is None


async def test_a_413_on_one_record_rejects_it_with_the_status_and_a_short_excerpt(
    make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(1)
    long_page = "<html>" + "Request Entity Too Large " * 40 + "</html>"
    async with scripted_mes(lambda _: web.Response(status=413, text=long_page)) as (url, _):
        async with connected(make_sink(url)) as sink:
            outcomes = await sink.write(batch_of(records))
    assert outcomes is not None and outcomes[0].verdict is Verdict.REJECTED
    reason = outcomes[0].reason or ""
    assert reason.startswith("MES answered 413: <html>Request Entity Too Large") and reason.endswith("…")
    assert len(reason) == len("MES answered 413: ") + 200 + 1


@pytest.mark.parametrize(
    "results",
    [
        {"results": "all good"},
        {"results": [{"seq": "1", "status": "accepted"}]},
        {"results": [{"seq": 1, "status": "ok"}]},
    ],
)
async def test_malformed_results_are_a_sink_error_so_nothing_is_lost(
    make_sink: MakeSink, make_records: MakeRecords, results: dict[str, Any]
) -> None:
    records = await make_records(1)
    answer = web.Response(body=orjson.dumps(results), content_type="application/json")
    async with scripted_mes(lambda _: answer) as (url, _), connected(make_sink(url)) as sink:
        with pytest.raises(
            SinkError, match=r"^mes: the MES answered (200 with results that are not a list|a malformed)"
        ):
            await sink.write(batch_of(records))


async def test_a_redirect_is_a_sink_error_naming_the_url(make_sink: MakeSink, make_records: MakeRecords) -> None:
    records = await make_records(1)
    moved = web.Response(status=308, headers={"Location": "https://mes.example/v2/records"})
    async with scripted_mes(lambda _: moved) as (url, bodies), connected(make_sink(url)) as sink:
        with pytest.raises(SinkError, match=r"is not the MES records endpoint \(308\): check url$"):
            await sink.write(batch_of(records))
    assert len(bodies) == 1
