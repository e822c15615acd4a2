"""The BacT/ALERT simulator on its own: the bottle model, and its side of the link read by hand off the pty."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import serial_asyncio

from device_sims.bactalert import BactAlertSim, Bottle
from tests.waiting import eventually

from .support import link_exists

ENQ, ACK, NAK, EOT = b"\x05", b"\x06", b"\x15", b"\x04"
REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 10, 8, 23, tzinfo=UTC)
FAST = {"reply_s": 0.5, "receive_s": 0.5, "busy_retry_s": 0.1, "contention_s": 0.1, "time_scale": 1.0}


def test_a_bottle_turns_positive_at_the_first_reading_after_its_ttd() -> None:
    bottle = Bottle("B1", "S1", "L1", ttd_h=54.3, loaded_at=T0)
    results = [bottle.read(T0 + timedelta(minutes=10 * k)) for k in range(1, 400)]
    assert results.count("positive") == 1 and bottle.detected_at == T0 + timedelta(minutes=3260)
    assert bottle.ttd_reported_h == 54.3 and bottle.readings == 326


def test_a_bottle_without_growth_is_negative_at_protocol_end() -> None:
    bottle = Bottle("B2", "S2", "L1", protocol_days=5, loaded_at=T0)
    results = [bottle.read(T0 + timedelta(minutes=10 * k)) for k in range(1, 800)]
    assert results.count("negative") == 1 and bottle.detected_at == T0 + timedelta(days=5)
    assert bottle.ttd_reported_h is None


class Host:
    """A hand-written LIS end of the line: reads bytes off the pty and answers as told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def byte(self) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(1), 5)

    async def frame(self) -> bytes:
        start = await self.byte()
        assert start == b"\x02", start
        return start + await asyncio.wait_for(self.reader.readuntil(b"\n"), 5)

    def send(self, data: bytes) -> None:
        self.writer.write(data)


async def host(sim: BactAlertSim) -> Host:
    reader, writer = await serial_asyncio.open_serial_connection(url=sim.serial_path, baudrate=9600)
    return Host(reader, writer)


async def test_the_load_message_on_the_wire(tmp_path: Path) -> None:
    sim = BactAlertSim([{"lot": "LOT-9", "bottle_id": "B-1", "specimen_id": "S|1"}], start="2025-01-10T08:23:00",
                       **FAST)
    async with sim:
        h = await host(sim)
        try:
            while await h.byte() != ENQ:  # an ENQ sent before we opened the line was flushed
                pass
            h.send(ACK)
            frames = []
            while True:
                frames.append(await h.frame())
                assert frames[-1][-4:-2] == b"%02X" % (sum(frames[-1][1:-4]) % 256)
                h.send(ACK)
                if frames[-1][2:3] == b"L":
                    break
            assert await h.byte() == EOT
            await eventually(lambda: sim.state().messages_sent == 1, what="the message counted as sent")
        finally:
            h.writer.close()
    assert [f[1:2] for f in frames] == [b"1", b"2", b"3", b"4", b"5", b"6"]
    texts = [f[2:-6].decode() for f in frames]
    assert texts[0].startswith("H|\\^&|||BTA3D^BACT/ALERT 3D^A.51^SN1234|||||||P|LIS2-A2|20250110")
    assert texts[2].startswith("O|1|S&F&1^LOT-9^iAST||^^^BTA_AER|R||20250110082300|")
    assert "|ONGOING|||||I||AUTO|20250110082300||BTA3D-01" in texts[3]
    assert texts[4] == "C|1|I|BOTTLE^B-1^CELL^A1-01^LOAD^20250110082300|G"


async def test_a_nak_gets_the_same_frame_again_and_silence_ends_in_eot_with_the_message_kept() -> None:
    async with BactAlertSim([{"lot": "L"}], **FAST) as sim:
        h = await host(sim)
        try:
            while await h.byte() != ENQ:
                pass
            h.send(ACK)
            first = await h.frame()
            h.send(NAK)
            assert await h.frame() == first
            # now say nothing: after reply_s the instrument terminates and keeps the message
            assert await h.byte() == EOT
            state = sim.state()
            assert state.naks == 1 and state.retransmissions == 1 and state.timeouts == 1
            assert state.messages_sent == 0 and state.pending == 1
        finally:
            h.writer.close()


def test_faults_are_checked() -> None:
    sim = BactAlertSim()
    with pytest.raises(ValueError, match="unknown fault 'fire'"):
        sim.inject("fire")
    with pytest.raises(ValueError, match="takes count"):
        sim.inject("corrupt_checksum", pause_s=1)
    with pytest.raises(ValueError, match="unknown option"):
        BactAlertSim([{"colour": "red"}])


async def test_a_scenario_drops_the_line_and_restore_brings_it_back_at_the_same_path() -> None:
    scenario = [{"after_s": 0, "inject": "line_drop", "at_frame": 1}, {"after_s": 0.3, "restore": True}]
    async with BactAlertSim([{"lot": "L"}], scenario=scenario, **FAST) as sim:
        path = sim.serial_path
        h = await host(sim)
        try:
            while await h.byte() != ENQ:
                pass
            h.send(ACK)  # the line drops before the first frame
            with pytest.raises((asyncio.IncompleteReadError, OSError, TimeoutError)):
                await h.frame()
        finally:
            h.writer.close()
        await eventually(lambda: sim.state().line_drops == 1 and sim.state().line_up, what="the line back")
        assert sim.serial_path == path and link_exists(path)


async def test_the_cli_prints_one_json_line_and_exits_0_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device_sims.bactalert.cli", "--json", "--bottles", "2", "--positive-h", "3",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
        info = json.loads(line)
        assert info["bottles"] == 2 and link_exists(info["serial_path"])
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # only the process this test started
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0 and out == b""
    assert not link_exists(info["serial_path"]), "the pty link is removed on exit"
