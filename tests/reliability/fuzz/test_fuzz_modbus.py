"""Fuzzing the Modbus adapter: arbitrary register words through each map's acquisition mode, decoders,
status and expectation rules, the pipeline's concentrations and the journal's payload encoding; and
malformed, short, exception and garbage responses through pymodbus's client framing and the adapter's
own response check.

What must hold:

* nothing raises but the gateway's own errors, whatever the registers say;
* every reading is what its registers mean, decoded here independently (word order, sign, bit fields,
  text), or, when they mean nothing (NaN or infinite floats, text that is not ASCII), a
  Bad_DecodingError record with no value that names the registers; no Good record is ever non-finite;
* the record modes never read more than ``max_catch_up`` records in one poll, and write only 16-bit
  values;
* an answer whose unit, function, length, byte count or frame is wrong, an exception answer, a stale
  answer or one cut short never passes for the answer asked for: it is refused, or it carries exactly
  the values that were sent. Modbus TCP has no checksum, so a changed register *value* inside a
  well-formed TCP answer is not detectable by any receiver and is not fuzzed here; RTU's CRC makes any
  changed byte detectable, and RTU answers are fuzzed byte by byte.
"""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU

from adapters.modbus.bus import BusSettings, ModbusBus, check_response
from adapters.modbus.registermap import LatestRecordAcquisition
from gateway.errors import CommunicationError, DeviceError
from tests.reliability.fuzz.budget import budget, tally, timeout_s
from tests.reliability.fuzz.modbus_drive import (
    EQUIPMENT,
    MAPS,
    REQUESTS,
    exception_frame,
    framer,
    judge,
    poll,
    receive,
    response,
    values_of,
    word,
)

TALLY = tally("modbus")
_SALT = st.integers(0, 2**32 - 1)


@pytest.mark.timeout(timeout_s(0.5))
@budget(0.5)
@given(st.integers(0, len(MAPS) - 1), _SALT, st.integers(1, 4))
def test_arbitrary_register_words_read_as_their_value_or_a_bad_record(which: int, salt: int, polls: int) -> None:
    rmap = MAPS[which]
    out = poll(which, random.Random(salt), polls)
    TALLY.add(out.bus.reads, out.bus.reads)  # every answer's words are drawn
    for batch, drafts in out.batches:
        for reading in batch.readings:
            wrong = judge(reading, rmap)
            assert wrong is None, f"{EQUIPMENT[which].register_map}: {wrong}"
        for draft, _ in drafts:
            if isinstance(draft.value, float):
                assert math.isfinite(draft.value), f"{draft.parameter} = {draft.value} ({draft.quality})"
            if draft.unit == "/m3" and draft.quality == "Good":
                assert isinstance(draft.value, float) and draft.value >= 0, draft
    acq = rmap.acquisition
    if isinstance(acq, LatestRecordAcquisition):
        index = rmap.points[acq.record_index_point].address
        selects = [v for table, address, v in out.bus.writes if (table, address) == ("holding", index)]
        records = [v for v in selects if v != -1]
        assert len(records) <= acq.max_catch_up * polls, "a poll read more records than max_catch_up"
    assert all(isinstance(e, DeviceError) for e in out.errors)


# -- responses on the wire -----------------------------------------------------------------------------
_STRUCTURE = ("unit", "fc", "count", "exception", "truncate", "stale", "garbage_after", "split")
_TCP_ONLY = ("tid", "pid", "length")
_RTU_ONLY = ("change", "flip", "crc")


def _crc(frame: bytes) -> bytes:
    """An RTU frame whose CRC is made right for its (changed) bytes: only its structure is wrong."""
    return frame[:-2] + FramerRTU.compute_CRC(frame[:-2]).to_bytes(2, "big")


def _mutate(kind: str, frame: bytes, fc: int, tid: int, op: str, rnd: random.Random) -> tuple[bytes, list[int]]:
    """One way a response goes wrong on the wire; the stream and where it is cut into reads."""
    head = 6 if kind == "tcp" else 0  # the unit id's position
    b = bytearray(frame)
    pieces: list[int] = []
    if op == "unit":
        b[head] = (b[head] + rnd.randint(1, 255)) % 256
    elif op == "fc":
        b[head + 1] = (b[head + 1] + rnd.randint(1, 255)) % 256
    elif op == "count" and fc in (1, 2, 3, 4):
        b[head + 2] = (b[head + 2] + rnd.randint(1, 255)) % 256
    elif op == "exception":
        b = bytearray(exception_frame(framer(kind), fc, rnd.randint(0, 255), tid))
    elif op == "truncate":
        del b[rnd.randint(1, len(b) - 1) :]
    elif op == "stale":  # an earlier answer, to another transaction, arrives first
        other_fc, other_count = rnd.choice(REQUESTS)
        k = rnd.randint(1, 5)
        old, _ = response(other_fc, other_count, rnd, tid - k if tid > k else tid + k)
        return framer(kind).buildFrame(old) + frame if kind == "tcp" else frame, pieces
    elif op == "garbage_after":
        b += rnd.randbytes(rnd.randint(1, 20))
    elif op == "split":
        pieces = [rnd.randint(1, 4) for _ in range(rnd.randint(1, 5))]
    elif op == "tid":
        b[0:2] = ((tid + rnd.randint(1, 65534)) % 65536).to_bytes(2, "big")
    elif op == "pid":
        b[2:4] = rnd.randint(1, 65535).to_bytes(2, "big")
    elif op == "length":
        b[4:6] = ((int.from_bytes(b[4:6], "big") + rnd.choice((-3, -2, -1, 1, 2, 3, 200))) % 65536).to_bytes(2, "big")
    elif op in ("change", "flip"):
        i = rnd.randrange(len(b))
        b[i] = (b[i] + rnd.randint(1, 255)) % 256 if op == "change" else b[i] ^ (1 << rnd.randrange(8))
        return bytes(b), pieces
    elif op == "crc":
        b[-2:] = ((int.from_bytes(b[-2:], "big") + rnd.randint(1, 65535)) % 65536).to_bytes(2, "big")
        return bytes(b), pieces
    if kind == "rtu" and op in ("unit", "fc", "count"):
        b = bytearray(_crc(bytes(b)))
    return bytes(b), pieces


def _judged(kind: str, stream: bytes, pieces: list[int], fc: int, count: int, tid: int) -> list[object] | None:
    """The values the adapter takes from the stream, or None when it refuses the answer; a failure when
    anything but pymodbus's decode error or the gateway's own errors comes out."""
    pdu, error = receive(kind, stream, pieces, tid)
    if error is not None:
        assert isinstance(error, ModbusIOException), f"pymodbus raised {error!r} on {stream.hex()}"
        return None
    if pdu is None:
        return None  # nothing that answers: the request times out
    try:
        check_response(pdu, function_code=fc, device_id=1, count=count, equipment_id="PC-F", address="x")
    except DeviceError:
        return None
    return values_of(pdu, fc, count)


@pytest.mark.timeout(timeout_s(0.3))
@budget(0.3)
@given(st.sampled_from(("tcp", "rtu")), st.sampled_from(REQUESTS), st.integers(0, 100), _SALT)
def test_a_malformed_short_or_exception_response_never_passes_for_the_answer(
    kind: str, request: tuple[int, int], pick: int, salt: int
) -> None:
    fc, count = request
    rnd = random.Random(salt)
    tid = rnd.randint(1, 65000)
    pdu, sent = response(fc, count, rnd, tid)
    frame = framer(kind).buildFrame(pdu)
    ops = _STRUCTURE + (_TCP_ONLY if kind == "tcp" else _RTU_ONLY)
    op = ops[pick % len(ops)]
    stream, pieces = _mutate(kind, frame, fc, tid, op, rnd)
    TALLY.add(1, 1)
    got = _judged(kind, stream, pieces, fc, count, tid)
    if got is not None:
        assert got == sent, f"{kind} {op}: {stream.hex()} passed as {got} for {sent}"
    if op == "split" or (op == "garbage_after" and kind == "tcp"):
        assert got == sent, f"{kind} {op}: a right answer, in pieces or with bytes after it, is taken"


@pytest.mark.timeout(timeout_s(0.2))
@budget(0.2)
@given(st.sampled_from(("tcp", "rtu")), st.sampled_from(REQUESTS), _SALT, st.integers(1, 8))
def test_any_bytes_as_a_response_never_break_the_client_path(
    kind: str, request: tuple[int, int], salt: int, changes: int
) -> None:
    fc, count = request
    rnd = random.Random(salt)
    tid = rnd.randint(1, 65000)
    stream = bytearray(framer(kind).buildFrame(response(fc, count, rnd, tid)[0]))
    for _ in range(changes):
        i = rnd.randrange(len(stream) + 1)
        how = rnd.randrange(4)
        if how == 0 and i < len(stream):
            stream[i] = rnd.randrange(256)
        elif how == 1:
            stream[i:i] = rnd.randbytes(rnd.randint(1, 8))
        elif how == 2:
            del stream[i : i + rnd.randint(1, 8)]
        else:
            stream[i:i] = bytes(word(rnd) & 0xFF for _ in range(rnd.randint(1, 8)))
    TALLY.add(1, 1)
    got = _judged(kind, bytes(stream), [rnd.randint(1, 9) for _ in range(rnd.randint(0, 4))], fc, count, tid)
    if got is not None:
        assert len(got) == (count if fc <= 4 else 2)


async def test_an_answer_that_does_not_decode_is_no_answer_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Found by the end-to-end fuzzer: pymodbus raised inside its protocol callback on a whole frame with an
    undecodable PDU, asyncio printed a traceback and dropped the connection. Now the request gets no valid
    answer (a CommunicationError naming the address), nothing is logged by asyncio, and the link stays
    open for the next request."""
    answers = [b"\x41\x00", b"\x03\x02\x00\x2a"]  # an unknown function code, then a right answer

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for pdu in answers:
            request = await reader.readexactly(12)
            writer.write(request[:4] + (len(pdu) + 1).to_bytes(2, "big") + request[6:7] + pdu)
            await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = BusSettings("tcp", "127.0.0.1", port, None, 9600, "N", 1, 8, timeout_s=0.3, retries=0)
    try:
        async with ModbusBus(settings) as bus:
            await bus.connect("PC-F")
            with pytest.raises(CommunicationError, match="no valid answer") as err:
                await bus.read("holding", 0, 1, device_id=1, equipment_id="PC-F")
            assert err.value.address == f"modbus+tcp://127.0.0.1:{port}/1/holding/0+1"
            assert await bus.read("holding", 0, 1, device_id=1, equipment_id="PC-F") == [42]
    finally:
        server.close()
        await server.wait_closed()
    assert not [r for r in caplog.records if r.name == "asyncio"], [r.getMessage() for r in caplog.records]
