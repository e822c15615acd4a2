"""The DAQ simulator on real endpoints: a TCP socket (port 0) and a pty, its faults, scenario and CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import termios
import tty
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from device_sims.scpi_daq import ScpiDaqSim
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


class Line:
    """A raw client on the simulator's TCP socket: one line out, one line back (bounded)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def ask(self, command: str, timeout_s: float = 1.0) -> str:
        self.writer.write(command.encode() + b"\n")
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), timeout_s)
        return line.decode("latin-1").rstrip("\n")


@asynccontextmanager
async def tcp(sim: ScpiDaqSim) -> AsyncIterator[Line]:
    assert sim.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        yield Line(reader, writer)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_endpoint_on_port_0_answers_scpi_and_names_its_visa_resource() -> None:
    async with ScpiDaqSim(seed=1) as sim, tcp(sim) as line:
        assert sim.resource == f"TCPIP0::127.0.0.1::{sim.port}::SOCKET" == sim.endpoint
        assert await line.ask("*IDN?") == "CGT Simulated Instruments,DAQ-4TC,SIM000001,1.0.0"
        values = [float(v) for v in (await line.ask("MEAS:TEMP? TC,K,(@101:104)")).split(",")]
        assert len(values) == 4 and all(-191 < v < -155 for v in values)
        assert await line.ask("ROUT:SCAN (@101,104);ROUT:SCAN?") == "(@101,104)"
        assert len((await line.ask("READ?")).split(",")) == 2
        assert sim.state().scan_list == (101, 104) and sim.state().identity_queries == 1


async def test_silent_error_queue_and_overload_faults() -> None:
    async with ScpiDaqSim(seed=2) as sim, tcp(sim) as line:
        sim.inject("silent")
        with pytest.raises(TimeoutError):
            await line.ask("*IDN?", timeout_s=0.2)
        sim.clear("silent")
        await line.ask("*CLS;*OPC?")  # the *IDN? sent while silent got no answer; nothing is pending
        sim.inject("error_queue", count=2)
        assert [await line.ask("SYST:ERR?") for _ in range(3)][1:] == [
            '-230,"Data corrupt or stale;input card fault 2"', '+0,"No error"']
        sim.inject("overload", channel=103)
        assert (await line.ask("MEAS:TEMP? (@103)")) == "+9.90000000E+37"
        sim.inject("wrong_identity")
        assert (await line.ask("*IDN?")).split(",")[2] == "SIM000002"
        await sim.restore()
        assert (await line.ask("*IDN?")).split(",")[2] == "SIM000001"
        assert (await line.ask("MEAS:TEMP? (@103)")) != "+9.90000000E+37"


async def test_scripted_temperatures_are_read_exactly_once_each_then_the_dewar_again() -> None:
    async with ScpiDaqSim(seed=5) as sim, tcp(sim) as line:
        sim.inject("scripted_temperatures", values=[-196.0, -150, 40.0, 9.9e37])
        assert "scripted_temperatures" in sim.state().faults
        assert await line.ask("MEAS:TEMP? TC,K,(@101:104)") == ",".join(["-1.96000000E+02"] * 4)
        assert await line.ask("MEAS:TEMP? TC,K,(@101:102)") == "-1.50000000E+02,-1.50000000E+02"
        assert await line.ask("ROUT:SCAN (@101:104);READ?") == ",".join(["+4.00000000E+01"] * 4)
        assert await line.ask("MEAS:TEMP? TC,K,(@103)") == "+9.90000000E+37"
        assert "scripted_temperatures" not in sim.state().faults
        assert all(-191 < float(v) < -155 for v in (await line.ask("READ?")).split(","))
        with pytest.raises(ValueError, match="finite numbers"):
            sim.inject("scripted_temperatures", values=[float("nan")])


async def test_a_disconnect_drops_clients_and_restore_listens_on_the_same_port() -> None:
    async with ScpiDaqSim() as sim:
        port = sim.port
        async with tcp(sim) as line:
            sim.inject("disconnect")
            assert await asyncio.wait_for(line.reader.read(), 1.0) == b""  # the connection is cut
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)
        await sim.restore()
        assert sim.port == port
        async with tcp(sim) as line:
            assert (await line.ask("*OPC?")) == "1"
        assert sim.state().connections == 2


async def test_pty_endpoint_is_a_serial_instrument() -> None:
    async with ScpiDaqSim(transport="pty") as sim:
        assert sim.serial_path is not None and sim.resource == f"ASRL{sim.serial_path}::INSTR"
        fd = os.open(sim.serial_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd)
            termios.tcflush(fd, termios.TCIOFLUSH)
            os.write(fd, b"*IDN?\r\n")
            received = bytearray()

            def reply() -> bool:
                try:
                    received.extend(os.read(fd, 256))
                except BlockingIOError:
                    pass
                return received.endswith(b"\n")

            await eventually(reply, timeout_s=10, what="the *IDN? reply on the pty")
            assert received.decode().startswith("CGT Simulated Instruments,DAQ-4TC,")
        finally:
            os.close(fd)


async def test_a_scenario_plays_faults_on_the_timeline() -> None:
    scenario = [{"after_s": 0.05, "inject": "ln2_empty"}, {"after_s": 0.1, "inject": "excursion",
                                                          "temperature_c": -120, "duration_s": 60, "channel": 104}]
    async with ScpiDaqSim(scenario=scenario, noise_c=0.0) as sim, tcp(sim) as line:
        await eventually(lambda: not sim.state().ln2_present, timeout_s=10, what="the LN2 to run out")
        await eventually(lambda: sim.model.forced, timeout_s=10, what="the excursion")
        assert await line.ask("MEAS:TEMP? (@104)") == "-1.20000000E+02"


def test_bad_options_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unknown transport"):
        ScpiDaqSim(transport="usb")
    sim = ScpiDaqSim()
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("fire")
    with pytest.raises(ValueError, match="no channel 109"):
        sim.inject("overload", channel=109)
    with pytest.raises(ValueError, match="takes no delta_c"):
        sim.inject("silent", delta_c=2)


async def test_cli_prints_one_json_ready_line_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device_sims.scpi_daq.cli", "--json", "--channels", "2", "--serial", "SN-42",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
        assert ready["resource"] == f"TCPIP0::127.0.0.1::{ready['port']}::SOCKET"
        assert ready["channels"] == [101, 102] and ready["identity"].split(",")[2] == "SN-42"
        reader, writer = await asyncio.open_connection("127.0.0.1", ready["port"])
        writer.write(b"MEAS:TEMP? (@101:102)\n")
        assert len((await asyncio.wait_for(reader.readline(), 2)).split(b",")) == 2
        writer.close()
        await writer.wait_closed()
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGTERM)  # only the process this test started
        stdout, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0 and stdout == b""
