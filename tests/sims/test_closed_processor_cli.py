"""The command line starts a simulator, prints one endpoint line, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from asyncua import Client

from device_sims.closed_processor import ClosedProcessorSim
from device_sims.closed_processor.cli import main
from gateway.errors import SimulatorError

from .opcua_support import read

REPO = Path(__file__).resolve().parents[2]


async def test_cli_json_line_then_sigterm_exits_0() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device_sims.closed_processor.cli", "--json", "--time-scale", "600", "--seed", "1",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
        info = json.loads(line)
        assert info["endpoint"] == f"opc.tcp://127.0.0.1:{info['port']}/cgt/closed-processor/"
        assert info["profile"] == "lads" and info["security"] == "none"
        async with Client(info["endpoint"], timeout=2) as client:
            assert await read(client, "DeviceSet/ClosedProcessor/DeviceState/CurrentState") == "Operating"
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGTERM)  # only the process this test started
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert stdout == b"", "the endpoint line is the only stdout output"
    assert proc.returncode == 0, stderr.decode()


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--profile", "--host", "--port", "--time-scale", "--seed", "--security", "--json"):
        assert option in out


async def test_a_taken_port_is_a_simulator_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SimulatorError, match=f"127.0.0.1:{port}"):
            async with ClosedProcessorSim(port=port):
                pass
