"""The freezer simulator on its pty, driven by a plain serial client: the protocol's commands, a profile
download that changes the reported checksum, faults on the wire, a line drop behind a stable path, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator

import pytest
import serial_asyncio

from device_sims.freezer import FreezerSim
from device_sims.freezer.wire import crc16_ccitt, line
from tests.simcli import start_cli, stop_cli
from tests.waiting import eventually


def is_link(path: str) -> bool:
    return os.path.islink(path)


def exists(path: str) -> bool:
    return os.path.lexists(path)


class Client:
    """A bare serial client that sends commands and collects the freezer's lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *fields: str) -> None:
        self.writer.write(line(*fields))
        await self.writer.drain()

    async def expect(self, prefix: bytes, timeout_s: float = 5.0) -> list[str]:
        """The next line starting with ``prefix`` (others are skipped), CRC checked, as fields."""
        async with asyncio.timeout(timeout_s):
            while True:
                raw = (await self.reader.readline()).rstrip(b"\r\n")
                if raw.startswith(prefix):
                    body, crc = raw[1:-5], raw[-4:]
                    assert int(crc, 16) == crc16_ccitt(body), raw
                    return body.decode().split(",")


@pytest.fixture
async def sim() -> AsyncIterator[FreezerSim]:
    async with FreezerSim(time_scale=60, sample_interval_s=5, seed=1) as s:
        yield s


@pytest.fixture
async def client(sim: FreezerSim) -> AsyncIterator[Client]:
    reader, writer = await serial_asyncio.open_serial_connection(url=sim.serial_path, baudrate=9600)
    try:
        yield Client(reader, writer)
    finally:
        writer.close()


async def test_identity_profile_and_run_commands(sim: FreezerSim, client: Client) -> None:
    await client.send("ID?")
    assert await client.expect(b"$ID,") == ["ID", "cgt-gateway", "CRF-SIM 560", "SIM-0001", "1.0.0"]
    await client.send("PRF?")
    assert await client.expect(b"$PRF,") == ["PRF", "classic-cell-therapy", "1", "11743B3C", "7"]
    await client.send("RUN?")
    assert await client.expect(b"$RUN,") == ["RUN", "IDLE"]
    await client.send("START", "LOT-9")
    assert await client.expect(b"$ACK,") == ["ACK", "START"]
    start = await client.expect(b"$RUN,")
    assert start[:2] == ["RUN", "START"] and start[3:] == ["R0001", "classic-cell-therapy", "11743B3C", "LOT-9"]
    sample = await client.expect(b"$S,")
    assert sample[2:5] == ["R0001", "1", "H"] and len(sample) == 12
    await client.send("START")
    assert await client.expect(b"$NAK,") == ["NAK", "START", "run R0001 is going"]
    await client.send("STOP")
    assert await client.expect(b"$ACK,") == ["ACK", "STOP"]
    end = await client.expect(b"$RUN,")
    assert end[:2] == ["RUN", "END"] and end[3:5] == ["R0001", "STOPPED"]
    assert sim.state().runs[0].outcome == "STOPPED"


async def test_a_downloaded_profile_reports_its_own_checksum(sim: FreezerSim, client: Client) -> None:
    await client.send("PDL", "fast-freeze", "2", "2")
    await client.send("PST", "1", "H", "4.0", "5.0")
    await client.send("PST", "2", "R", "-80.0", "5.00")
    assert await client.expect(b"$ACK,") == ["ACK", "PDL"]
    prf = await client.expect(b"$PRF,")
    assert prf[:2] == ["PRF", "fast-freeze"] and prf[3] != "11743B3C"
    assert sim.state().profile_checksum == prf[3]


async def test_a_command_with_a_bad_crc_is_ignored(sim: FreezerSim, client: Client) -> None:
    client.writer.write(b"$ID?*0000\r\n")
    await client.send("RUN?")
    await client.expect(b"$RUN,")
    assert sim.state().commands == ("?", "RUN?")


async def test_a_corrupt_checksum_fault_reaches_the_wire(sim: FreezerSim, client: Client) -> None:
    sim.inject("corrupt_checksum", lines=1)
    raw = b""
    async with asyncio.timeout(5):
        while not raw.startswith(b"$S,"):
            raw = (await client.reader.readline()).rstrip(b"\r\n")
    assert int(raw[-4:], 16) != crc16_ccitt(raw[1:-5])


async def test_a_line_drop_comes_back_behind_the_same_path(sim: FreezerSim) -> None:
    path = sim.serial_path
    assert path is not None
    sim.inject("disconnect")
    assert not exists(path) and not sim.state().link_up
    await sim.restore()
    assert is_link(path) and sim.state().link_up
    reader, writer = await serial_asyncio.open_serial_connection(url=path, baudrate=9600)
    try:
        await Client(reader, writer).send("ID?")
        await Client(reader, writer).expect(b"$ID,")
    finally:
        writer.close()


async def test_a_run_on_start_and_a_power_cut_that_aborts() -> None:
    async with FreezerSim(time_scale=600, sample_interval_s=10, seed=2, run_on_start={"lot": "L1"},
                          resume_max_s=60) as sim:
        assert sim.state().run_id == "R0001"
        sim.inject("power_loss", duration_s=120)
        await eventually(lambda: sim.state().runs, what="the run aborted when power came back")
        assert sim.state().runs[0].outcome == "POWERFAIL" and sim.state().run_id is None


async def test_cli_prints_one_json_line_and_stops_on_sigterm() -> None:
    args = ("--json", "--run", "--lot", "LOT-CLI", "--time-scale", "60")
    proc, ready = await start_cli("device_sims.freezer.cli", *args)
    try:
        info = json.loads(ready)
        assert info["profile"] == "classic-cell-therapy" and info["profile_checksum"] == "11743B3C"
        assert info["run_id"] == "R0001" and is_link(info["serial_path"])
        assert info["endpoint"] == info["serial_path"]
    finally:
        returncode, _stderr = await stop_cli(proc, signal.SIGTERM)
    assert returncode == 0
    assert not exists(info["serial_path"]), "the pty link is removed on exit"


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="freezing profile 'nope' not found"):
        FreezerSim(profile="nope")
    with pytest.raises(ValueError, match="sample_interval_s"):
        FreezerSim(sample_interval_s=0.1)
