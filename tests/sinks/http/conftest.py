"""Fixtures for the HTTP sink tests: records from a real journal, a sink factory, the stand-in MES."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from device_sims.mes import MesStandIn
from gateway.sinks import SinkContext, WireRecord
from gateway.sinks.http import HttpSink, HttpSinkConfig, plugin

from .support import GATEWAY_ID, MakeRecords, MakeSink, journal_records


@pytest.fixture
def make_records(tmp_path: Path) -> MakeRecords:
    """``await make_records(n)``: n committed records exactly as the forwarder sends them."""

    async def make(n: int) -> list[WireRecord]:
        return await journal_records(tmp_path / f"journal-{n}.db", n)

    return make


@pytest_asyncio.fixture
async def mes() -> AsyncIterator[MesStandIn]:
    async with MesStandIn() as standin:
        yield standin


@pytest.fixture
def make_sink(tmp_path: Path) -> MakeSink:
    """``make_sink(url, **fields)``: an unconnected sink built as the runtime builds it (through the plugin)."""

    def make(url: str, **fields: Any) -> HttpSink:
        entry = {"name": "mes", "type": "http", "url": url, **fields}
        config = HttpSinkConfig.model_validate(entry, context={"config_dir": tmp_path})
        return plugin.create(config, SinkContext(gateway_id=GATEWAY_ID))

    return make
