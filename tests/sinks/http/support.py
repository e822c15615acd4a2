"""Helpers of the HTTP sink tests: real records out of a real journal, batches as the forwarder builds them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from gateway.sinks import WireRecord
from gateway.sinks.http import HttpSink
from tests.sinks.records import GATEWAY_ID, batch_of, draft, journal_records

MakeRecords = Callable[[int], Awaitable[list[WireRecord]]]
MakeSink = Callable[..., HttpSink]

__all__ = ["GATEWAY_ID", "MakeRecords", "MakeSink", "batch_of", "connected", "draft", "journal_records"]


@asynccontextmanager
async def connected(sink: HttpSink) -> AsyncIterator[HttpSink]:
    """A connected sink, closed afterwards whatever happens."""
    await sink.connect()
    try:
        yield sink
    finally:
        await sink.close()
