"""Fuzzing the VISA adapter: mutated SCPI replies through its scan (the reply parser and the map's
field-to-point mapping), its error-queue reading, its clock reading, the pipeline and the journal's
payload encoding.

The adapter's session is replaced by a stand-in of the byte stream: each query gets the next reply the
"instrument" sends, read up to the line end as pyvisa reads it, so a reply with an extra line end
answers the next query too (out of step, as on a real line) and a reply without one times out. Built on
the property tests of ``tests/adapters/visa`` (numbers, random text), with replies as the simulator
writes them and every kind of mutation. What must hold:

* the scan never raises: a reply that never ends is the session's CommunicationError, nothing else;
* a reading is Good only when its field is an SCPI decimal, finite, not the overload or not-a-number
  code, and the error queue read clean after it; it then carries that field's value exactly;
* a reply with the wrong number of fields makes every point of its query Bad_DecodingError with the
  reply quoted; a field that is not a number is Bad_DecodingError quoting it;
* the clock offset, when the clock could be read, is a finite number, whatever the date and time
  replies say and in whatever zone the instrument's clock is set.

SCPI carries no checksum: a changed digit is a different number to any receiver, so what is asked here
is that nothing which is not a number is ever read as one.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.visa import VisaEquipmentConfig, plugin
from adapters.visa.adapter import VisaAdapter
from adapters.visa.scpi import parse_error, split_fields
from adapters.visa.session import Discarded
from gateway.errors import CommunicationError
from gateway.journal._chain import draft_body, encode_payload
from gateway.pipeline import EquipmentPipeline
from gateway.records import Quality, ReadingBatch
from tests.reliability.fuzz.budget import budget, tally, timeout_s
from tests.reliability.fuzz.mutations import run

TALLY = tally("visa")


def _equipment(zone: str) -> VisaEquipmentConfig:
    return VisaEquipmentConfig.model_validate({
        "id": "LN2-F", "class": "cryo_storage", "kind": "visa", "resource": "TCPIP::127.0.0.1::5025::SOCKET",
        "instrument_map": "scpi-temperature-daq", "device_timezone": zone,
        "identity": {"manufacturer": "CGT Simulated Instruments", "model": "DAQ-4TC", "serial": "SIM000001"},
    })  # fmt: skip


#: The instrument's clock in UTC, west of it and east of it (a local time near the ends of the calendar
#: falls outside it in UTC on one side).
EQUIPMENT = [_equipment(z) for z in ("UTC", "America/New_York", "Asia/Tokyo")]
MAP = plugin.device_map(EQUIPMENT[0])
MEAS = MAP.scan[0].query
ERR, DATE, TIME = "SYST:ERR?", "SYST:DATE?", "SYST:TIME?"
#: SCPI-99 / IEEE 488.2 decimal numbers (NR1, NR2, NR3).
SCPI_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)

#: Replies as the simulator writes them (``%+.8E``, the overload code, error-queue entries, the clock),
#: and replies an instrument could send at the edges.
REPLIES: dict[str, list[bytes]] = {
    MEAS: [b"-1.89935591E+02,-1.80700000E+02,-1.71300000E+02,-1.62000000E+02",
           b"-1.89935591E+02,+9.90000000E+37,-1.71300000E+02,-9.9E37", b"+2.15E+01,21.5,22,.5",
           b"9.91E37,-1.62E+02,-1.62E+02,-1.62E+02", b"1e400,-0,+0.0,1E-400"],
    ERR: [b'+0,"No error"', b'-230,"Data corrupt or stale"', b'-113,"Undefined header"', b'0,"No error"'],
    DATE: [b"2026,11,22", b"+2026,+10,+25", b"1,1,1", b"9999,12,31", b"2026,2,29", b"0,1,1", b"2026,12,31"],
    TIME: [b"9,15,3.123", b"+09,+15,+03.123", b"23,59,60", b"23,59,59.9999999", b"24,0,0", b"0,0,0", b"12,0,0"],
}  # fmt: skip


@dataclass
class ReplyLine:
    """The session's place: each query gets the next reply sent for it, read up to its line end."""

    replies: list[bytes]
    buffer: bytearray = field(default_factory=bytearray)
    answered: list[tuple[str, bytes]] = field(default_factory=list)

    async def query(self, command: str) -> bytes:
        if self.replies:
            self.buffer += self.replies.pop(0)
        else:
            self.buffer += b'+0,"No error"\n' if command == ERR else b""
        end = self.buffer.find(b"\n")
        if end < 0:
            self.buffer.clear()
            raise CommunicationError(f"no reply to {command!r} within 2 s", equipment_id="LN2-F", address="x")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        self.answered.append((command, line))
        return line

    async def discard_pending(self, wait_s: float) -> Discarded:
        """What arrived past the last line read is dropped (as the session does after a reply out of step)."""
        dropped = bytes(self.buffer)
        self.buffer.clear()
        return Discarded(dropped.count(b"\n") + (not dropped.endswith(b"\n") and bool(dropped)), len(dropped))

    async def write(self, command: str) -> None:
        """Commands have no reply."""

    async def close(self) -> None:
        """Nothing to release."""


def _adapter(zone: int, sent: list[bytes]) -> tuple[VisaAdapter, ReplyLine, EquipmentPipeline]:
    eq = EQUIPMENT[zone]
    adapter = VisaAdapter(eq, MAP)
    line = ReplyLine(list(sent))
    adapter._session = line  # type: ignore[assignment]
    return adapter, line, EquipmentPipeline(eq, MAP, "f" * 64, monitors=plugin.monitors(eq, MAP))


@pytest.mark.parametrize(("zone", "date", "time"), [
    (2, b"1,1,1", b"0,30,0"), (1, b"9999,12,31", b"23,30,0"), (0, b"9" * 40 + b",11,22", b"9,15,3"),
])  # fmt: skip
def test_a_clock_at_the_ends_of_the_calendar_is_unreadable_not_an_error(zone: int, date: bytes, time: bytes) -> None:
    """Found by this fuzzer: an OverflowError left the scan, so the instrument was never read."""
    adapter, _, _ = _adapter(zone, [REPLIES[MEAS][0] + b"\n", date + b"\n", time + b"\n", date + b"\n"])
    scan, error = run(adapter._scan())
    assert error is None and adapter.clock_offset_s is None
    assert [name for name, _ in scan.events] == ["device_clock_unreadable"]
    assert [r.quality for r in scan.readings] == [Quality.GOOD] * 4


_GARBLE = b"xq#@!?/_:;~ \t\r\"'"


def _mutate(reply: bytes, rnd: random.Random) -> tuple[bytes, str]:
    """One change to one reply (its line end included)."""
    op = rnd.choice(("change", "insert", "delete", "truncate", "no_end", "extra_end", "dup", "comma", "garble",
                     "oversize", "random", "other_reply", "empty"))  # fmt: skip
    b = bytearray(reply)
    i = rnd.randrange(len(b) + 1)
    if op == "change" and b:
        b[min(i, len(b) - 1)] = rnd.randrange(256)
    elif op == "insert":
        b[i:i] = bytes([rnd.randrange(256)])
    elif op == "delete" and b:
        del b[min(i, len(b) - 1)]
    elif op == "truncate":
        del b[i:]
        b += b"\n"
    elif op == "no_end":
        b = b.rstrip(b"\n")
    elif op == "extra_end":
        b[i:i] = b"\n"
    elif op == "dup" and b:
        c = rnd.choice(b",\n\"+-.E" if rnd.random() < 0.8 else bytes(b))
        b[i:i] = bytes([c])
    elif op == "comma":
        b[i:i] = b","
    elif op == "garble" and b:
        b[min(i, len(b) - 1)] = rnd.choice(_GARBLE)
    elif op == "oversize":
        b[i:i] = (b",-1.62E+02" if rnd.random() < 0.5 else b"9") * rnd.randint(10, 400)
    elif op == "random":
        b = bytearray(rnd.randbytes(rnd.randint(0, 60)) + b"\n")
    elif op == "other_reply":
        b = bytearray(rnd.choice(rnd.choice(list(REPLIES.values()))) + b"\n")
    elif op == "empty":
        b = bytearray(b"\n")
    return bytes(b), op


@st.composite
def replies(draw: st.DrawFn) -> tuple[int, list[bytes], tuple[str, ...], int]:
    """Replies for two scans (measure, clock on the first, error queue) with one to four mutated."""
    zone = draw(st.integers(0, len(EQUIPMENT) - 1))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    order = [MEAS, DATE, TIME, DATE, ERR, ERR, MEAS, ERR]
    sent = [rnd.choice(REPLIES[q]) + b"\n" for q in order]
    sent[5] = b'+0,"No error"\n'  # the queue empties after at most one error
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        k = draw(st.integers(0, len(sent) - 1))
        sent[k], op = _mutate(sent[k], rnd)
        ops.append(f"reply {k} ({order[k]}) {op}")
    return zone, sent, tuple(ops), len(order)


def _check_scan(batch: ReadingBatch, answered: list[tuple[str, bytes]], ops: tuple[str, ...]) -> None:
    meas = [line for command, line in answered if command == MEAS]
    errors = [line for command, line in answered if command == ERR]
    first = parse_error(errors[0].decode("ascii", "replace")) if errors else None
    clean_queue = first is not None and not first.is_error
    if not meas:
        return
    text = meas[0].decode("ascii", "replace")
    fields = split_fields(text)
    points = [r for r in batch.readings if r.point in MAP.scan[0].points]
    if len(fields) != len(MAP.scan[0].points):
        assert all(r.value is None and r.quality == Quality.BAD_DECODING_ERROR for r in points), (text, ops)
        assert all("field(s), the map expects 4" in (r.detail or "") for r in points)
        return
    for r, f in zip(points, fields, strict=True):
        assert r.raw == f.encode("ascii", "replace"), (r.raw, f)
        if r.quality == Quality.GOOD:
            assert clean_queue, f"Good while the error queue said {errors[:1]} ({ops})"
            assert SCPI_NUMBER.fullmatch(f), f"{f!r} read as {r.value} ({ops})"
            assert r.value == float(f) and math.isfinite(r.value)
            assert not math.isclose(abs(r.value), 9.9e37, rel_tol=1e-6), "the overload code read as a value"
        elif r.value is None and not SCPI_NUMBER.fullmatch(f):
            assert r.quality == Quality.BAD_DECODING_ERROR and "not a SCPI number" in (r.detail or ""), (f, r)


@pytest.mark.timeout(timeout_s(1.0))
@budget(1.0)
@given(replies())
def test_a_garbled_reply_is_bad_or_flagged_never_a_good_misreading(
    drawn: tuple[int, list[bytes], tuple[str, ...], int],
) -> None:
    zone, sent, ops, count = drawn
    adapter, line, pipeline = _adapter(zone, sent)
    eq = adapter.equipment
    TALLY.add(count, len(ops))
    for _ in range(2):
        before = len(line.answered)
        scan, error = run(adapter._scan())
        assert error is None or isinstance(error, CommunicationError), f"{error!r} ({ops})"
        batch = ReadingBatch(eq.id, scan.readings, events=scan.events, clock_offset_s=adapter.clock_offset_s)
        for draft, raw in pipeline.process(batch):
            encode_payload(draft_body(draft, raw))
        assert adapter.clock_offset_s is None or math.isfinite(adapter.clock_offset_s)
        if error is not None:
            return  # the supervisor reconnects: a new session, nothing left in the line
        _check_scan(batch, line.answered[before:], ops)
