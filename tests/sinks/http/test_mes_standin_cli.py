"""The MES stand-in from the command line: one ready line, batches taken, faults driven over HTTP, exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from device_sims.mes.cli import main
from gateway.sinks import SinkError
from tests.simcli import REPO, help_text, start_cli, stop_cli

from .support import GATEWAY_ID, MakeRecords, MakeSink, batch_of, connected

MES = "device_sims.mes.cli"




async def test_cli_takes_batches_with_a_token_from_the_environment_and_exits_0_on_sigterm(
    tmp_path: Path, make_sink: MakeSink, make_records: MakeRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await make_records(5)
    jsonl = tmp_path / "received.jsonl"
    env = {**os.environ, "CLI_MES_TOKEN": "s3cret"}
    proc, line = await start_cli(
        MES, "--port", "0", "--token-env", "CLI_MES_TOKEN", "--jsonl", str(jsonl), "--json", env=env
    )
    try:
        info = json.loads(line)
        assert info["endpoint"] == f"http://127.0.0.1:{info['port']}/records" and info["token_required"] is True
        monkeypatch.setenv("MES_TOKEN", "s3cret")
        async with connected(make_sink(info["endpoint"], bearer_token_env="MES_TOKEN")) as sink:
            assert await sink.write(batch_of(records[:3])) is None
            async with aiohttp.ClientSession() as http:
                async with http.post(info["control"], json={"action": "fail", "status": 503, "count": 1}) as answer:
                    assert answer.status == 200 and (await answer.json())["faults"]["fail_status"] == 503
                with pytest.raises(SinkError, match="answered 503"):
                    await sink.write(batch_of(records[3:]))
                assert await sink.write(batch_of(records, attempt=2)) is None  # 1-3 again: duplicates
                async with http.get(info["control"].replace("/_control", "/_state")) as answer:
                    state = await answer.json()
        assert (state["stored"], state["received"], state["duplicates"]) == (5, 8, 3)
        assert state["gateways"] == [GATEWAY_ID]
    finally:
        returncode, stderr = await stop_cli(proc)
    assert returncode == 0, stderr.decode()
    lines = jsonl.read_bytes().splitlines()
    assert [orjson.loads(x) for x in lines] == records  # each record once, in order, as received


async def test_cli_human_line_and_a_missing_token_variable_exits_2() -> None:
    proc, line = await start_cli(MES, "--path", "/api/records")
    try:
        assert line.startswith("mes stand-in listening on http://127.0.0.1:")
        assert line.endswith("/api/records (no token); Ctrl-C to stop")
    finally:
        returncode, _ = await stop_cli(proc)
    assert returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "CLI_MES_UNSET"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device_sims.mes.cli", "--token-env", "CLI_MES_UNSET",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 2 and stdout == b""
    assert (
        stderr.decode().strip().endswith("error: environment variable CLI_MES_UNSET (--token-env) is not set or empty")
    )


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_text(main, capsys)
    for option in ("--port", "--path", "--token-env", "--jsonl", "--json"):
        assert option in out
