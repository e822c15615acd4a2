"""Fuzzing the freezer adapter: mutated lines through its line assembler, translator, batching, the
pipeline (with the profile-conformance monitor) and the journal's payload encoding.

Built on the property tests of ``tests/adapters/crf/test_crf_codec.py`` (random bytes, one changed
byte, cut and spliced lines), with seeds from the simulator's own encoder and every kind of mutation.
What must hold:

* nothing raises, whatever arrives;
* a line the protocol can tell is corrupt (a byte changed under its CRC, truncated, oversize, a wrong
  CRC, a delimiter doubled or lost) yields exactly a ``line_error`` record and nothing else: every
  other reading carries a line that was sent, with a value that line gives;
* whatever arrives, a value only ever comes from a line that passes an independent CRC check;
* a garbled field inside a line with a right CRC is refused whole (``bad_field``, ``field_count``...),
  never read: a Good temperature, valve demand or step is exactly what its field says, in its form.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.serial.crf.translate import LINE_ERROR_QUALITY
from device_sims.freezer.wire import crc16_ccitt
from tests.reliability.fuzz.budget import budget, tally, timeout_s
from tests.reliability.fuzz.crf_drive import FRAMING, REASONS, SENT, STREAMS, decode, line_ok, line_values
from tests.reliability.fuzz.mutations import Mutant, detectable, havoc

TALLY = tally("crf")
#: Readings whose value depends on what the gateway received before, not on the line alone.
_STATEFUL = {"run_samples_received"}


def test_every_seed_decodes_without_a_line_error() -> None:
    for stream in STREAMS:
        entries = decode(b"".join(stream)).entries
        assert entries and not [d for d, _ in entries if d.parameter == "line_error"]


@pytest.mark.timeout(timeout_s(0.4))
@budget(0.4)
@given(detectable(STREAMS, FRAMING))
def test_a_corrupt_line_gives_a_line_error_and_nothing_else(mutant: Mutant) -> None:
    out = decode(mutant.data, mutant.chunks)
    TALLY.add(mutant.units, mutant.mutated)
    for batch, _ in out.batches:
        for r in batch.readings:
            if r.point == "line_error":
                assert r.value in REASONS and r.quality == LINE_ERROR_QUALITY
                continue
            assert r.raw in SENT, f"{r.point} = {r.value!r} from a line that was not sent: {r.raw!r} ({mutant.ops})"
            if r.quality == "Good" and r.point not in _STATEFUL:
                assert (r.point, r.value) in line_values(r.raw), f"{r.point} = {r.value!r} ({mutant.ops})"


@pytest.mark.timeout(timeout_s(0.3))
@budget(0.3)
@given(havoc(STREAMS, FRAMING))
def test_any_stream_never_raises_and_values_come_only_from_lines_that_check(mutant: Mutant) -> None:
    out = decode(mutant.data, mutant.chunks)
    TALLY.add(mutant.units, mutant.mutated)
    for batch, _ in out.batches:
        for r in batch.readings:
            if r.point == "line_error":
                assert r.value in REASONS and r.quality == LINE_ERROR_QUALITY and r.detail
            else:
                assert r.raw is not None and line_ok(r.raw), f"{r.point} from {r.raw!r} ({mutant.ops})"


# -- fields garbled inside lines with a right CRC ---------------------------------------------------
_TOKENS = ["nan", "inf", "1e3", "-0.00", "999.99", "-273.16", "-273.15", "1000.00", "100.1", "100.0", "00000001",
           "9999999", "99", "100", "-", "", "OPEN", "open", " 4.00", "4.00 ", "+4.00", "4.000", "4.", ".4", "4_0.0",
           "FFFF", "ffff", "0x10", "20261322T073000Z", "20260229T000000Z", "20261122T246000Z", "20261122T073000",
           "START", "END", "IDLE", "COMPLETE", "POWERFAIL", "H", "R", "I", "X", "S", "RUN", "PRF", "EVT", "A" * 40]
_PRINTABLE = bytes(range(0x20, 0x7F)).replace(b"$", b"").replace(b"*", b"").replace(b",", b"")
_TEMP = re.compile(r"-?\d{1,3}\.\d{1,2}", re.ASCII)
#: Where each value of a sample line is (field index, counting the message type as 0) and its form.
_SAMPLE_FIELDS = {
    "set_point": (6, _TEMP), "chamber_temperature": (7, _TEMP), "sample_temperature": (8, _TEMP),
    "sample_temperature_2": (9, _TEMP), "ln2_valve_demand": (10, re.compile(r"\d{1,3}\.\d", re.ASCII)),
    "profile_step": (3, re.compile(r"\d{1,2}", re.ASCII)), "step_elapsed": (5, re.compile(r"\d{1,6}", re.ASCII)),
}  # fmt: skip


def _framed(body: bytes) -> bytes:
    return b"$" + body + b"*%04X" % crc16_ccitt(body) + b"\r\n"


@st.composite
def garbled(draw: st.DrawFn) -> tuple[bytes, tuple[str, ...]]:
    """One seed line whose fields are changed, dropped or added, framed again with a right CRC."""
    seed = draw(st.sampled_from(sorted(SENT)))
    fields = seed[1 : seed.index(b"*")].split(b",")
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        op = ("token", "token", "chars", "drop", "add")[draw(st.integers(0, 4))]
        i = rnd.randrange(len(fields))
        if op == "token":
            fields[i] = rnd.choice(_TOKENS).encode()
        elif op == "chars":
            fields[i] = bytes(rnd.choice(_PRINTABLE) for _ in range(rnd.randint(0, 8)))
        elif op == "drop" and len(fields) > 1:
            del fields[i]
        else:
            fields.insert(i, rnd.choice(_TOKENS).encode())
        ops.append(f"{op} field {i}")
    return _framed(b",".join(fields)), (seed.decode(), *ops)


@pytest.mark.timeout(timeout_s(0.3))
@budget(0.3)
@given(garbled())
def test_a_garbled_field_under_a_right_crc_is_refused_whole_never_misread(line: tuple[bytes, tuple[str, ...]]) -> None:
    raw, ops = line
    out = decode(raw)
    TALLY.add(1, 1)
    readings = [r for batch, _ in out.batches for r in batch.readings]
    errors = [r for r in readings if r.point == "line_error"]
    if errors:
        assert len(readings) == 1 and errors[0].value in REASONS, (readings, ops)
        return
    fields = raw[1 : raw.index(b"*")].decode().split(",")
    for r in readings:
        assert r.raw == raw[:-2]
        where = _SAMPLE_FIELDS.get(r.point) if fields[0] == "S" else None
        if where is None or r.quality != "Good":
            continue
        text = fields[where[0]]
        assert where[1].fullmatch(text), f"{r.point} = {r.value!r} read from {text!r} ({ops})"
        assert r.value == (int(text) if isinstance(r.value, int) else float(text))
