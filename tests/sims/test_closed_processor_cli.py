"""The command line starts a simulator, prints one endpoint line, and exits 0 on SIGTERM."""

from __future__ import annotations

import json

import pytest
from asyncua import Client

from device_sims.closed_processor import ClosedProcessorSim
from device_sims.closed_processor.cli import main
from tests.simcli import assert_taken_port_refused, help_text, start_cli, stop_cli

from .opcua_support import read


async def test_cli_json_line_then_sigterm_exits_0() -> None:
    proc, line = await start_cli("device_sims.closed_processor.cli", "--json", "--time-scale", "600", "--seed", "1")
    try:
        info = json.loads(line)
        assert info["endpoint"] == f"opc.tcp://127.0.0.1:{info['port']}/cgt/closed-processor/"
        assert info["profile"] == "lads" and info["security"] == "none"
        async with Client(info["endpoint"], timeout=10) as client:
            assert await read(client, "DeviceSet/ClosedProcessor/DeviceState/CurrentState") == "Operating"
    finally:
        returncode, stderr = await stop_cli(proc)
    assert returncode == 0, stderr.decode()


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_text(main, capsys)
    for option in ("--profile", "--host", "--port", "--time-scale", "--seed", "--security", "--json"):
        assert option in out


async def test_a_taken_port_is_a_simulator_error() -> None:
    await assert_taken_port_refused(lambda port: ClosedProcessorSim(port=port))
