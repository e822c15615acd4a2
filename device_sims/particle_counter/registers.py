"""Pure helpers that turn values into 16-bit Modbus registers, one function per wire convention.

Each profile states its word order by which helper it calls, so "Lighthouse floats are low word first"
is visible at the call site instead of hidden in a flag.
"""

from __future__ import annotations

import struct

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF


def u16(value: int) -> int:
    """Clamp to an unsigned 16-bit register (negative values clamp to 0)."""
    return max(0, min(U16_MAX, int(value)))


def i16(value: float) -> int:
    """A signed 16-bit value as its two's-complement register."""
    clamped = max(-0x8000, min(0x7FFF, round(value)))
    return clamped & U16_MAX


def u32_hi_lo(value: int) -> tuple[int, int]:
    """An unsigned 32-bit value, high word first (big-endian word order), clamped to the range."""
    clamped = max(0, min(U32_MAX, int(value)))
    return clamped >> 16, clamped & U16_MAX


def f32_lo_hi(value: float) -> tuple[int, int]:
    """An IEEE-754 float32 with big-endian bytes but LOW word first (the Lighthouse analog convention)."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return lo, hi


def ascii_registers(text: str, count: int) -> list[int]:
    """Text as 2 ASCII chars per register (first char in the high byte), NUL padded to `count` registers."""
    raw = text.encode("ascii")[: 2 * count].ljust(2 * count, b"\x00")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def join_u32(hi: int, lo: int) -> int:
    """Two registers, high word first, back to one unsigned 32-bit value."""
    return ((hi & U16_MAX) << 16) | (lo & U16_MAX)
