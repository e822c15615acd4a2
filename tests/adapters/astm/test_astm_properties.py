"""Property tests: random and mutated byte streams through link, assembler and profile.

Never an exception, and never a record from a corrupt frame: every record delivered is made of frames
whose checksum, recomputed here independently, is right; a single changed byte (which always changes
the 8-bit sum) never yields a record that was not sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.serial.astm.frames import message_frames
from adapters.serial.astm.link import Link, LinkSettings, RecordIn, State
from adapters.serial.astm.message import Assembler, Message, Rejected
from adapters.serial.astm.profile import load_profile
from adapters.serial.astm.results import Context, message_batch, rejected_batch
from gateway.config import PROJECT_CONFIG_DIR
from tests.adapters.astm.worked import BACTALERT_POSITIVE, ENQ, EOT, MINI_LIS, records_of

PROFILE = load_profile(PROJECT_CONFIG_DIR / "astm-profiles" / "bactalert-lis2a2.yaml")
CTX = Context("BTA-1", "astm+serial:///dev/null", UTC)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = ENQ + b"".join(BACTALERT_POSITIVE) + EOT + ENQ + b"".join(MINI_LIS) + EOT
LONG = ENQ + b"".join(message_frames([b"H|\\^&", b"C|1|I|" + b"q&F&" * 100, b"L|1|N"])) + EOT
SENT = set(records_of(BACTALERT_POSITIVE) + records_of(MINI_LIS)) | {b"H|\\^&", b"C|1|I|" + b"q&F&" * 100, b"L|1|N"}


def checksum_ok(frame: bytes) -> bool:
    return frame[-4:-2] == b"%02X" % (sum(frame[1:-4]) % 256)


def run(stream: bytes, chunks: list[int]) -> list[RecordIn]:
    """Feed ``stream`` in pieces with clock ticks in between, through every layer; return the records."""
    link = Link(LinkSettings(receive_s=1.0))
    asm = Assembler()
    got: list[RecordIn] = []
    now, pos = 0.0, 0
    for size in [*chunks, len(stream)]:
        piece, pos = stream[pos : pos + size], pos + size
        actions = link.feed(piece, now) + link.tick(now := now + 0.4)
        for action in actions:
            if isinstance(action, RecordIn):
                got.append(action)
                out = asm.add(action.text, action.frames)
                if isinstance(out, Message):
                    message_batch(out, PROFILE, CTX, NOW)
                elif out is not None:
                    rejected_batch(out, CTX, NOW)
        if link.state is State.HOLDING:
            link.release(now)
        if pos >= len(stream):
            break
    link.tick(now + 100.0)
    cut = asm.cut("end of test")
    if cut is not None:
        rejected_batch(cut, CTX, NOW)
    return got


@FAST
@given(st.binary(max_size=600), st.lists(st.integers(1, 64), max_size=20))
def test_random_bytes_never_raise_and_never_make_a_bad_record(data: bytes, chunks: list[int]) -> None:
    for record in run(data, chunks):
        assert all(checksum_ok(f) for f in record.frames)


@FAST
@given(st.data())
def test_a_changed_byte_never_yields_a_record_that_was_not_sent(data: st.DataObject) -> None:
    stream = bytearray(data.draw(st.sampled_from([VALID, LONG])))
    # one byte: two changes can cancel out in an 8-bit sum, which no E1381 receiver can detect
    i = data.draw(st.integers(0, len(stream) - 1))
    stream[i] = (stream[i] + data.draw(st.integers(1, 255))) % 256
    chunks = data.draw(st.lists(st.integers(1, 300), max_size=8))
    for record in run(bytes(stream), chunks):
        assert record.text in SENT
        assert all(checksum_ok(f) for f in record.frames)


@FAST
@given(st.data())
def test_several_changes_insertions_and_deletions_never_raise(data: st.DataObject) -> None:
    stream = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(stream) - 1))
        how = data.draw(st.sampled_from(["change", "delete", "insert"]))
        if how == "change":
            stream[i] = data.draw(st.integers(0, 255))
        elif how == "delete":
            del stream[i]
        else:
            stream[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    for record in run(bytes(stream), data.draw(st.lists(st.integers(1, 200), max_size=8))):
        assert all(checksum_ok(f) for f in record.frames)


@FAST
@given(st.lists(st.binary(min_size=1, max_size=80).filter(lambda b: b"\r" not in b), min_size=1, max_size=8))
def test_random_records_through_the_assembler_and_profile_never_raise(texts: list[bytes]) -> None:
    asm = Assembler(encoding="utf-8")
    for text in [*texts, b"L|1|N"]:
        out = asm.add(text, (text,))
        if isinstance(out, Message):
            message_batch(out, PROFILE, CTX, NOW)
        elif isinstance(out, Rejected):
            assert out.frames
