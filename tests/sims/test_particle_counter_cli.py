"""The command line starts a simulator, prints one endpoint line, and exits 0 on SIGTERM or SIGINT."""

from __future__ import annotations

import json
import re
import shutil
import signal

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from device_sims.particle_counter import ParticleCounterSim
from device_sims.particle_counter.cli import main
from tests.simcli import assert_taken_port_refused, help_text, start_cli, stop_cli

from .support import link_exists

PC = "device_sims.particle_counter.cli"




async def test_cli_json_line_then_sigterm_exits_0() -> None:
    proc, line = await start_cli(PC, "--profile", "metone6000", "--port", "0", "--sample-time-s", "0.5", "--json")
    try:
        info = json.loads(line)
        assert info["profile"] == "metone6000" and info["unit_ids"] == [1]
        assert info["endpoint"] == f"tcp://127.0.0.1:{info['port']}"
        client = AsyncModbusTcpClient("127.0.0.1", port=info["port"], timeout=1, retries=0, reconnect_delay=0)
        try:
            assert await client.connect()
            assert (await client.read_holding_registers(38, count=1, device_id=1)).registers == [100]
        finally:
            client.close()
    finally:
        returncode, stderr = await stop_cli(proc, signal.SIGTERM)
    assert returncode == 0, stderr.decode()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
async def test_cli_rtu_line_with_two_units_then_sigint_exits_0() -> None:
    proc, line = await start_cli(
        PC, "--profile", "lighthouse", "--transport", "rtu", "--unit-id", "1", "--unit-id", "2"
    )
    try:
        match = re.fullmatch(
            r"particle-counter lighthouse listening on rtu://(\S+) \(units 1, 2\); Ctrl-C to stop", line
        )
        assert match, line
        client = AsyncModbusSerialClient(
            match[1], framer=FramerType.RTU, baudrate=19200, timeout=1, retries=0, reconnect_delay=0
        )
        try:
            assert await client.connect()
            assert (await client.read_holding_registers(0, count=1, device_id=2)).registers == [148]
        finally:
            client.close()
    finally:
        returncode, stderr = await stop_cli(proc, signal.SIGINT)
    assert returncode == 0, stderr.decode()
    assert not link_exists(match[1])  # socat and its links are gone


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_text(main, capsys)
    for option in ("--profile", "--transport", "--unit-id", "--grade", "--sample-time-s", "--seed", "--json"):
        assert option in out


async def test_a_taken_port_is_a_simulator_error() -> None:
    await assert_taken_port_refused(lambda port: ParticleCounterSim(port=port))
