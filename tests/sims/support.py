"""Helpers shared by the simulator tests: bounded waits and register decoding done by hand.

Decoding here is deliberately independent of the simulator's own `registers` module, so a word-order
mistake in one is not mirrored by the other.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tests.waiting import eventually

__all__ = ["eventually"]


def u32_hi_first(regs: list[int], offset: int) -> int:
    """Two registers, high word first."""
    return (regs[offset] << 16) | regs[offset + 1]


def f32_low_word_first(regs: list[int], offset: int) -> float:
    """IEEE float32, big-endian bytes, low word first (Lighthouse analog channels)."""
    return struct.unpack(">f", struct.pack(">HH", regs[offset + 1], regs[offset]))[0]


def f32_high_word_first(regs: list[int], offset: int) -> float:
    """The same two registers read with the common (wrong for Lighthouse) high-word-first order."""
    return struct.unpack(">f", struct.pack(">HH", regs[offset], regs[offset + 1]))[0]


def ascii_text(regs: list[int]) -> str:
    """2 chars per register, high byte first, NUL padded."""
    return b"".join(r.to_bytes(2, "big") for r in regs).rstrip(b"\x00").decode("ascii")


def link_exists(path: str) -> bool:
    """True if a path exists or is a (possibly dangling) symlink, like socat's pty links."""
    return Path(path).is_symlink() or Path(path).exists()
