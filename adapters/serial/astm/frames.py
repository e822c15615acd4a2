"""E1381 / LIS01-A2 frames: control characters, the checksum, building and checking one frame. Pure.

A frame is ``STX FN text (ETB|ETX) C1 C2 CR LF``: FN is an ASCII digit 0-7, the checksum is the sum of
the bytes from FN through ETB/ETX inclusive, mod 256, as two uppercase hex digits. A record longer than
the frame limit (240 text characters) goes out in ETB frames and ends in an ETX frame; its terminating
CR is inside the text of the last frame.
"""

from __future__ import annotations

from dataclasses import dataclass

STX, ETX, EOT, ENQ, ACK, NAK, ETB = b"\x02", b"\x03", b"\x04", b"\x05", b"\x06", b"\x15", b"\x17"
CR, LF = b"\r", b"\n"

#: Text characters per frame (LIS01-A2: 240; the frame is then at most 247 characters).
MAX_TEXT = 240
#: Characters that must not appear in frame text (LIS01-A2): SOH STX ETX EOT ENQ ACK DLE NAK SYN ETB LF DC1-DC4.
RESTRICTED = frozenset(b"\x01\x02\x03\x04\x05\x06\x10\x15\x16\x17\x0a\x11\x12\x13\x14")


def checksum(body: bytes) -> bytes:
    """The two hex digits for ``body`` = FN + text + ETB/ETX (the STX is not summed)."""
    return b"%02X" % (sum(body) & 0xFF)


def build_frame(fn: int, text: bytes, final: bool) -> bytes:
    """One frame with frame number ``fn`` (taken mod 8); ``final`` ends it with ETX, else ETB."""
    body = b"%d" % (fn % 8) + text + (ETX if final else ETB)
    return STX + body + checksum(body) + CR + LF


def record_frames(record: bytes, first_fn: int, max_text: int = MAX_TEXT) -> list[bytes]:
    """A record (without its CR) as frames numbered from ``first_fn``: ETB continuations, then ETX."""
    text = record + CR
    chunks = [text[i : i + max_text] for i in range(0, len(text), max_text)]
    return [build_frame(first_fn + i, chunk, i == len(chunks) - 1) for i, chunk in enumerate(chunks)]


def message_frames(records: list[bytes], max_text: int = MAX_TEXT) -> list[bytes]:
    """A whole message's frames, each record starting a new frame, FN from 1 wrapping 7 → 0."""
    frames: list[bytes] = []
    for record in records:
        frames += record_frames(record, len(frames) + 1, max_text)
    return frames


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that passed every check."""

    fn: int
    text: bytes
    final: bool
    raw: bytes


class FrameError(ValueError):
    """Why a frame was rejected (the receiver answers NAK); ``raw`` is the frame as received."""

    def __init__(self, reason: str, raw: bytes) -> None:
        self.reason = reason
        self.raw = raw
        super().__init__(reason)


def parse_frame(raw: bytes, max_text: int = MAX_TEXT) -> Frame:
    """Check one frame from STX through LF; FrameError says what is wrong with it."""
    if len(raw) < 7 or raw[:1] != STX or raw[-2:] != CR + LF:
        raise FrameError("not a frame (STX ... CR LF)", raw)
    fn_byte, terminator = raw[1:2], raw[-5:-4]
    if not fn_byte.isdigit() or int(fn_byte) > 7:
        raise FrameError(f"frame number {fn_byte!r} is not a digit 0-7", raw)
    if terminator not in (ETX, ETB):
        raise FrameError("no ETX or ETB before the checksum", raw)
    text = raw[2:-5]
    if len(text) > max_text:
        raise FrameError(f"{len(text)} text characters, more than the {max_text} a frame may carry", raw)
    bad = next((b for b in text if b in RESTRICTED), None)
    if bad is not None:
        raise FrameError(f"restricted character 0x{bad:02X} in the text", raw)
    final = terminator == ETX
    if b"\r" in (text[:-1] if final else text):
        raise FrameError("CR inside a record (it may only end one)", raw)
    if final and not text.endswith(CR):
        raise FrameError("the last frame of a record does not end with CR", raw)
    expected = checksum(raw[1:-4])
    if raw[-4:-2].upper() != expected:
        raise FrameError(f"checksum {raw[-4:-2]!r} is not {expected.decode()}", raw)
    return Frame(int(fn_byte), text, final, raw)
