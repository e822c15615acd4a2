"""End-to-end fuzzing on serial lines: the culture reader (ASTM) and the freezer (line protocol), each
behind a relay on a pty that corrupts what its simulator sends, read by one real gateway process beside
a steady counter.

The relay changes frames and lines only in ways the protocol can see (a byte changed under the
checksum, a byte inserted or deleted, a wrong checksum, an oversize frame with a right checksum, a
truncated line, noise), so the test can ask, of every record:

* the gateway keeps running and stops cleanly; ``verify`` passes;
* the steady counter's stream has no gap, no repeat and no communication event;
* every Good record of the fuzzed device carries frames or a line exactly as the simulator sent them;
  what was corrupted is a link event (ASTM: ``frame_rejected``, NAKed, sent again by the instrument) or
  a Bad record (freezer: ``line_error``), and the device's data goes on arriving.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from device_sims.bactalert import BactAlertSim
from device_sims.freezer import FreezerSim
from tests.reliability.fuzz.astm_drive import FRAMING as ASTM
from tests.reliability.fuzz.astm_drive import frame_ok, frame_text, split_frames
from tests.reliability.fuzz.crf_drive import FRAMING as CRF
from tests.reliability.fuzz.e2e import beside_a_steady_counter, with_raw
from tests.reliability.fuzz.relays import PtyRelay
from tests.reliability.gatewayproc import of_parameter
from tests.waiting import eventually

STX, ENQ, EOT = 0x02, 0x05, 0x04


class Corrupter:
    """Corrupts a share of the frames (or lines) a simulator sends, each in one way the protocol sees."""

    def __init__(self, rng: random.Random, rate: float, ops: dict[str, object]) -> None:
        self.rng, self.rate, self.ops = rng, rate, ops
        self.done: list[str] = []

    def __call__(self, unit: bytes) -> bytes:
        if len(unit) < 8 or self.rng.random() >= self.rate:
            return unit
        name = self.rng.choice(sorted(self.ops))
        self.done.append(name)
        return self.ops[name](unit, self.rng)  # type: ignore[operator]


def _at(unit: bytes, rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, len(unit) - high)


def _astm_units(buffer: bytearray) -> list[bytes]:
    """Frames (STX … LF) and the single bytes between them."""
    out = []
    while buffer:
        end = buffer.find(b"\n") if buffer[0] == STX else 0
        if end < 0:
            break
        out.append(bytes(buffer[: end + 1]))
        del buffer[: end + 1]
    return out


#: Inserted into a frame's text: any byte the 8-bit sum sees (not NUL) that does not end the transfer.
_ASTM_INSERT = [b for b in range(1, 256) if b not in (ENQ, EOT, 0x0A)]
ASTM_OPS = {
    "change": lambda u, r: u[: (i := _at(u, r, 1, 3))] + bytes([(u[i] + r.randint(1, 255)) % 256]) + u[i + 1 :],
    "insert": lambda u, r: u[: (i := _at(u, r, 2, 5))] + bytes([r.choice(_ASTM_INSERT)]) + u[i:],
    "delete": lambda u, r: u[: (i := _at(u, r, 1, 3))] + u[i + 1 :],
    "wrong_checksum": lambda u, r: ASTM.wrong_check(u, r.randint(1, 255)),
    "oversize": lambda u, r: ASTM.oversize(u, r.randint(1, 100)),
    "noise": lambda u, r: bytes(r.choice(_ASTM_INSERT[2:]) for _ in range(r.randint(1, 30))) + u,
}


def _lines(buffer: bytearray) -> list[bytes]:
    out = []
    while (end := buffer.find(b"\n")) >= 0:
        out.append(bytes(buffer[: end + 1]))
        del buffer[: end + 1]
    return out


_CRF_INSERT = bytes(b for b in range(256) if not 0x20 <= b <= 0x7E and b != 0x0A) + b"$*,"
CRF_OPS = {
    "change": lambda u, r: u[: (i := _at(u, r, 0, 3))] + bytes([(u[i] + r.randint(1, 255)) % 256]) + u[i + 1 :],
    "insert": lambda u, r: u[: (i := _at(u, r, 1, 2))] + bytes([r.choice(_CRF_INSERT)]) + u[i:],
    "truncate": lambda u, r: u[: _at(u, r, 2, 4)] + b"\r\n",
    "wrong_crc": lambda u, r: CRF.wrong_check(u, r.randint(1, 0xFFFF)),
    "oversize": lambda u, r: CRF.oversize(u, r.randint(1, 100)),
    "doubled": lambda u, r: u[: (i := r.choice([i for i, b in enumerate(u[:-2]) if b in b"$*,"]))] + u[i:],
    "junk_line": lambda u, r: bytes(r.randint(0x20, 0x7E) for _ in range(r.randint(1, 60))).replace(b"$", b"")
    + b"\r\n",
}


ASTM_ENTRY = ("  - {{id: BTA-1, class: culture_reader, kind: astm, port: '{path}', timers: {{receive_s: 2}},"
              " clock: {{max_offset_s: null}}}}\n")  # fmt: skip
CRF_ENTRY = ("  - {{id: CRF-1, class: controlled_rate_freezer, kind: crf, port: '{path}',"
             " approved_profiles: [classic-cell-therapy], reply_timeout_s: 1, silence_timeout_s: 2,"
             " clock: {{max_offset_s: null}}}}\n")  # fmt: skip


@pytest.mark.slow
async def test_serial_devices_behind_corrupting_lines_never_give_a_record_from_corrupt_input(
    tmp_path: Path, rng: random.Random
) -> None:
    bottles = [{"lot": "LOT-F", "ttd_h": h} for h in (2.0, 4.0)] + [{"lot": "LOT-F"} for _ in range(2)]
    reader = BactAlertSim(bottles, time_scale=36_000, protocol_days=0.5, seed=rng.randrange(1000), reply_s=1.0,
                          receive_s=1.0, busy_retry_s=0.2, contention_s=0.2)  # fmt: skip
    freezer = FreezerSim(time_scale=40, sample_interval_s=1, seed=rng.randrange(1000), run_on_start={"lot": "LOT-F"})
    frames, lines = Corrupter(rng, 0.25, ASTM_OPS), Corrupter(rng, 0.3, CRF_OPS)
    async with (
        reader,
        freezer,
        PtyRelay(str(reader.serial_path), _astm_units, frames) as astm_relay,
        PtyRelay(str(freezer.serial_path), _lines, lines) as crf_relay,
    ):
        entries = ASTM_ENTRY.format(path=astm_relay.path) + CRF_ENTRY.format(path=crf_relay.path)
        async with beside_a_steady_counter(tmp_path, "gw-fuzz-serial", entries, rng) as run:

            def enough() -> bool:
                run.gw.alive()
                refused = [r for r in of_parameter(run.journal, "line_error", "CRF-1") if r.value is not None]
                samples = of_parameter(run.journal, "chamber_temperature", "CRF-1")
                return len(reader.state().sent) >= 8 and len(refused) >= 8 and len(samples) >= 25

            await eventually(enough, timeout_s=40, what="four bottles' loads and results, 8 corrupt lines refused")
    _check_astm(run.journal, astm_relay.sent, frames.done, len(reader.state().sent))
    _check_crf(run.journal, crf_relay.sent, lines.done)


def _check_astm(journal: Path, sent_units: list[bytes], corrupted: list[str], delivered: int) -> None:
    """Every Good record of the reader carries frames as the instrument sent them; corrupt frames were
    refused (and sent again); every message the instrument saw ACKed was committed."""
    fuzzed = with_raw(journal, "BTA-1")
    sent = {frame_text(u) for u in sent_units if u[:1] == bytes([STX])}
    good = [(r, raw) for r, raw in fuzzed if r.quality == "Good" and r.parameter != "astm_link" and raw is not None]
    for record, raw in good:
        frames = split_frames(raw)
        assert frames and all(frame_ok(f) and frame_text(f) in sent for f in frames), (record, raw)
    rejected = [r for r, _ in fuzzed if r.parameter == "astm_link" and r.value == "frame_rejected"]
    received = [r for r, _ in fuzzed if r.parameter == "astm_message" and r.value == "received"]
    assert corrupted and rejected, "the relay corrupted frames and the gateway refused them"
    assert len(received) >= delivered, "every message the instrument saw ACKed was committed"
    print(f"ASTM: {len(sent_units)} units sent, {len(corrupted)} corrupted {sorted(set(corrupted))}; "
          f"{len(rejected)} frames NAKed, {len(received)} messages received, {len(good)} Good records checked")


def _check_crf(journal: Path, sent_lines: list[bytes], corrupted: list[str]) -> None:
    """Every Good record of the freezer carries a line as it was sent; corrupt lines are line errors."""
    sent = {u.rstrip(b"\r\n") for u in sent_lines}
    fuzzed = with_raw(journal, "CRF-1")
    for record, raw in fuzzed:
        if record.quality == "Good" and raw is not None:
            assert raw in sent, f"{record.parameter} = {record.value!r} from a line that was not sent: {raw!r}"
    errors = [r for r, _ in fuzzed if r.parameter == "line_error" and r.value is not None]
    assert errors and all(r.quality.startswith("Bad") and r.detail for r in errors)
    print(f"freezer: {len(sent_lines)} lines sent, {len(corrupted)} corrupted {sorted(set(corrupted))}; "
          f"{len(errors)} line errors, {len(fuzzed)} records checked")
