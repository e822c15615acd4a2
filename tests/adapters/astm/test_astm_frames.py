"""Frames: the worked examples' checksums byte for byte, FN wrap 7 → 0, ETB continuation, every rejection."""

from __future__ import annotations

import pytest

from adapters.serial.astm.frames import FrameError, build_frame, checksum, message_frames, parse_frame, record_frames
from tests.adapters.astm.worked import BACTALERT_POSITIVE, MINI_LIS, records_of


@pytest.mark.parametrize("worked", [MINI_LIS, BACTALERT_POSITIVE], ids=["mini-lis", "bactalert"])
def test_the_worked_messages_are_built_byte_for_byte(worked: list[bytes]) -> None:
    assert message_frames(records_of(worked)) == worked


@pytest.mark.parametrize("raw", MINI_LIS + BACTALERT_POSITIVE)
def test_the_worked_frames_parse(raw: bytes) -> None:
    frame = parse_frame(raw)
    assert frame.final and frame.text.endswith(b"\r") and frame.raw == raw


def test_checksum_is_the_sum_from_fn_through_etx_mod_256_in_uppercase_hex() -> None:
    assert checksum(b"4L|1|N\r\x03") == b"07"
    assert checksum(b"\xff\xff") == b"FE"
    assert build_frame(9, b"x\r", True)[1:2] == b"1"  # FN is taken mod 8


def test_a_long_record_continues_in_etb_frames_and_the_frame_number_wraps_7_to_0() -> None:
    comment = b"C|1|I|" + b"".join(b"%03d-" % i for i in range(75))  # 306 characters
    assert len(comment) == 306
    frames = record_frames(comment, first_fn=7)
    assert [f[1:2] for f in frames] == [b"7", b"0"]
    assert frames[0][-5:-4] == b"\x17" and frames[1][-5:-4] == b"\x03"
    assert len(frames[0]) == 247  # 240 text characters + 7 overhead, the largest frame allowed
    first, last = parse_frame(frames[0]), parse_frame(frames[1])
    assert not first.final and last.final
    assert first.text + last.text == comment + b"\r"
    # the checksums, summed independently of the module under test
    for raw in frames:
        assert raw[-4:-2] == f"{sum(raw[1:-4]) % 256:02X}".encode()


def test_a_message_longer_than_seven_frames_wraps() -> None:
    frames = message_frames([b"H|\\^&"] + [b"R|%d" % i for i in range(1, 9)] + [b"L|1|N"])
    assert b"".join(f[1:2] for f in frames) == b"1234567012"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (MINI_LIS[3].replace(b"\x0307", b"\x0308"), "checksum"),
        (MINI_LIS[3].replace(b"\x024L", b"\x029L"), "frame number"),
        (MINI_LIS[3].replace(b"\x024L", b"\x02AL"), "frame number"),
        (MINI_LIS[3][:-1], "not a frame"),
        (b"\x024L|1|\x05N\r\x03" + checksum(b"4L|1|\x05N\r\x03") + b"\r\n", "restricted"),
        (b"\x024L|1|N\x03" + checksum(b"4L|1|N\x03") + b"\r\n", "does not end with CR"),
        (b"\x024L|\r1|N\r\x03" + checksum(b"4L|\r1|N\r\x03") + b"\r\n", "CR inside"),
        (b"\x024L|1|N\r\x04" + checksum(b"4L|1|N\r\x04") + b"\r\n", "no ETX or ETB"),
        (build_frame(1, b"x" * 240 + b"\r", True), "more than the 240"),
    ],
)
def test_a_bad_frame_is_rejected_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason) as err:
        parse_frame(raw)
    assert err.value.raw == raw


def test_a_larger_frame_limit_can_be_agreed() -> None:
    assert parse_frame(build_frame(1, b"x" * 300 + b"\r", True), max_text=400).final
