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

from device_sims.bactalert import BactAlertSim, Bottle, astm
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


async def read_message(h: Host) -> list[bytes]:
    """One whole message off the line, every frame ACKed; its frames as sent."""
    while await h.byte() != ENQ:  # an ENQ sent before we opened the line was flushed
        pass
    h.send(ACK)
    frames = []
    while not frames or frames[-1][2:3] != b"L":
        frames.append(await h.frame())
        h.send(ACK)
    assert await h.byte() == EOT
    return frames


def results(frames: list[bytes]) -> dict[str, list[str]]:
    """The R records of a message by test code, split into fields (E1394 field n at index n - 1)."""
    texts = [f[2:-6].decode() for f in frames if f[2:3] == b"R"]
    return {t.split("|")[2].split("^")[-1]: t.split("|") for t in texts}


async def test_a_sent_result_is_corrected_on_the_wire_and_a_message_sent_again_byte_for_byte() -> None:
    sim = BactAlertSim([{"lot": "L", "ttd_h": 0.1, "bottle_id": "B-1", "specimen_id": "S-1"}], report_loads=False,
                       **{**FAST, "time_scale": 3600.0})
    sim.inject("correct_result", ttd_h=2.5)  # before the result exists: it follows the result
    async with sim:
        h = await host(sim)
        try:
            positive = await read_message(h)
            correction = await read_message(h)
            sim.inject("resend")
            again = await read_message(h)
            await eventually(lambda: len(sim.state().sent) == 3, what="the third message counted as sent")
        finally:
            h.writer.close()
    before, after = results(positive), results(correction)
    assert before["STATUS"][3] == after["STATUS"][3] == "POSITIVE"
    assert (before["STATUS"][8], before["TTD"][8], before["TTD"][3]) == ("F", "F", "0.2")
    assert (after["STATUS"][8], after["TTD"][8], after["TTD"][3]) == ("C", "C", "2.5")
    assert after["STATUS"][12] != before["STATUS"][12], "the detection time (R.13) is corrected with the TTD"
    same_bottle = [f for f in positive if f[2:3] in (b"O", b"C")]
    assert [f[2:20] for f in same_bottle] == [f[2:20] for f in correction if f[2:3] in (b"O", b"C")]
    assert again == correction, "sent again byte for byte"
    state = sim.state()
    assert state.sent == ("B-1:positive", "B-1:correction", "B-1:resend")
    assert state.bottles["B-1"]["ttd_h"] == 2.5 and state.bottles["B-1"]["corrections"] == 1


def test_a_correction_marks_only_the_results_that_changed_and_a_result_goes_again_as_last_sent() -> None:
    bottle = Bottle("B1", "S1", "L1", protocol_days=1, loaded_at=T0)
    while bottle.read(T0 + timedelta(minutes=10 * (bottle.readings + 1))) is None:
        pass
    sent: dict[str, str] = {}
    negative = astm.as_sent_before(astm.bottle_message(bottle, T0, "I-1", "SN"), sent, correcting=False)
    bottle.correct(20.0)
    fixed = astm.as_sent_before(astm.bottle_message(bottle, T0, "I-1", "SN"), sent, correcting=True)
    status = next(r.split("|") for r in fixed if "^STATUS|" in r)
    ttd = next(r.split("|") for r in fixed if "^TTD|" in r)
    assert (status[3], status[8]) == ("POSITIVE", "C") and (ttd[3], ttd[8]) == ("20.0", "F"), "TTD is new"
    assert "NEGATIVE" in next(r for r in negative if r.startswith("R|"))
    later = astm.as_sent_before(astm.bottle_message(bottle, T0, "I-1", "SN"), sent, correcting=False)
    assert [r for r in later if r.startswith("R|")] == [r for r in fixed if r.startswith("R|")]


def test_faults_are_checked() -> None:
    sim = BactAlertSim()
    with pytest.raises(ValueError, match="unknown fault 'fire'"):
        sim.inject("fire")
    with pytest.raises(ValueError, match="takes count"):
        sim.inject("corrupt_checksum", pause_s=1)
    with pytest.raises(ValueError, match="bottle 4 is not one of the 3 bottles"):
        sim.inject("correct_result", bottle=4)
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
        "--correct-ttd-h", "4", "--resend-after-s", "60", "--start", "2030-01-01T00:00:00",
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
