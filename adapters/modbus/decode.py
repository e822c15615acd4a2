"""Registers → typed values. Pure functions, no I/O, so every wire convention is tested without a socket.

Order of work for one point (the Home Assistant order, minus the parts that belong to the core):
pick the words in the device's word order, unpack with plain int/struct operations, reject what is
not a value (NaN, infinity, a wrong register count, text that is not ASCII). Scale, offset and range
are *not* applied here: the core's normaliser applies them from the same map, for every protocol.

A decoder is built once per point (:func:`decoder_for`) and called on the point's slice of a block on
every read; it raises :class:`~gateway.errors.DecodeError` and never returns a stand-in value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from gateway.errors import DecodeError

WordOrder = Literal["big", "little"]
PointType = Literal["uint16", "int16", "uint32", "int32", "float32", "string", "bits", "bool"]
Registers = Sequence[int]
Decoder = Callable[[Sequence[int]], bool | int | float | str]

_FLOAT = struct.Struct(">f")
_TWO_WORDS = struct.Struct(">HH")

#: How many registers each fixed-size type spans (string and bits take their count from the point).
REGISTERS_PER_TYPE: dict[str, int] = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "bool": 1}


def _need(regs: Registers, n: int, what: str) -> None:
    if len(regs) != n:
        raise DecodeError(f"{what} needs {n} register{'s' if n != 1 else ''}, got {len(regs)}")


def uint16(regs: Registers) -> int:
    _need(regs, 1, "uint16")
    return regs[0]


def int16(regs: Registers) -> int:
    _need(regs, 1, "int16")
    r = regs[0]
    return r - 0x10000 if r & 0x8000 else r


def uint32(regs: Registers, word_order: WordOrder = "big") -> int:
    """Big word order is high word first (Lighthouse and AirNet integers)."""
    _need(regs, 2, "uint32")
    if word_order == "big":
        return (regs[0] << 16) | regs[1]
    return (regs[1] << 16) | regs[0]


def int32(regs: Registers, word_order: WordOrder = "big") -> int:
    value = uint32(regs, word_order)
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def float32(regs: Registers, word_order: WordOrder = "big") -> float:
    """IEEE-754 single, bytes big-endian within each word; the word order is the device's.

    Lighthouse writes its analog floats low word first although its integers are high word first,
    which is why the map carries a separate ``float_word_order``.
    """
    _need(regs, 2, "float32")
    hi, lo = (regs[0], regs[1]) if word_order == "big" else (regs[1], regs[0])
    packed = _TWO_WORDS.pack(hi, lo)
    value: float = _FLOAT.unpack(packed)[0]
    if not math.isfinite(value):
        raise DecodeError(f"float32 registers 0x{regs[0]:04X} 0x{regs[1]:04X} are {value} (not a number)")
    return shortest_float32(value, packed)


def shortest_float32(value: float, packed: bytes) -> float:
    """The shortest decimal that is the same float32: 21.5 stays 21.5 and 19.9 reads 19.9, not
    19.899999618530273. Exact, not rounding: the decimal packs back to the very bytes the device sent."""
    for digits in (6, 7, 8):
        candidate = float(f"{value:.{digits}g}")
        if _FLOAT.pack(candidate) == packed:
            return candidate
    return float(f"{value:.9g}")  # 9 significant digits always round-trip a float32


def string(regs: Registers, count: int) -> str:
    """Two ASCII characters per register, first in the high byte, trimmed at the first NUL."""
    _need(regs, count, "string")
    data = struct.pack(f">{count}H", *regs)
    end = data.find(b"\x00")
    if end >= 0:
        data = data[:end]
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"string is not ASCII: {data!r}") from exc


def bits(regs: Registers, word_order: WordOrder = "big") -> int:
    """A bit-mapped word (or pair of words) as one unsigned integer, bit 0 the least significant."""
    if len(regs) == 1:
        return regs[0]
    if len(regs) == 2:
        return uint32(regs, word_order)
    raise DecodeError(f"bits needs 1 or 2 registers, got {len(regs)}")


def bit_field(regs: Registers, bit: int, width: int) -> int:
    """``width`` bits of one register starting at ``bit`` (e.g. the low byte of an AirNet state word)."""
    _need(regs, 1, "bit field")
    return (regs[0] >> bit) & ((1 << width) - 1)


def register_bit(regs: Registers, bit: int) -> bool:
    _need(regs, 1, "bool")
    return bool((regs[0] >> bit) & 1)


def coil(values: Sequence[bool]) -> bool:
    """A coil or discrete input as read."""
    if len(values) != 1:
        raise DecodeError(f"bool needs 1 bit, got {len(values)}")
    return bool(values[0])


def decoder_for(
    type_: PointType,
    *,
    table: Literal["holding", "input", "coil", "discrete"] = "holding",
    word_order: WordOrder = "big",
    count: int | None = None,
    bit: int | None = None,
    width: int | None = None,
    invert: bool = False,
) -> Decoder:
    """The decoder of one point, chosen once so a read does no dispatch on the type."""
    if table in ("coil", "discrete"):
        return (lambda v: not coil(v)) if invert else coil
    if type_ == "bool":
        if bit is None:
            raise ValueError("a bool in a register needs its bit")
        b = bit
        return (lambda r: not register_bit(r, b)) if invert else (lambda r: register_bit(r, b))
    if bit is not None:
        b, w = bit, width or 1
        return lambda r: bit_field(r, b, w)
    if type_ == "uint16":
        return uint16
    if type_ == "int16":
        return int16
    if type_ == "uint32":
        return lambda r: uint32(r, word_order)
    if type_ == "int32":
        return lambda r: int32(r, word_order)
    if type_ == "float32":
        return lambda r: float32(r, word_order)
    if type_ == "string":
        n = count or 1
        return lambda r: string(r, n)
    if type_ == "bits":
        n = count or 1

        def decode_bits(r: Registers) -> int:
            _need(r, n, "bits")
            return bits(r, word_order)

        return decode_bits
    raise ValueError(f"unknown point type {type_!r}")


def registers_to_bytes(regs: Registers) -> bytes:
    """The registers as they were on the wire: each big-endian, in the order received."""
    return struct.pack(f">{len(regs)}H", *regs)


def alarm_bits(value: int, bit_numbers: Iterable[int], *, active_good: bool) -> list[int]:
    """Which of ``bit_numbers`` are in their alarm state.

    Lighthouse status bits are active-alarm (a set bit is the alert); PMS AirNet bits are active-good
    (a set bit says the laser or flow is good, so a *cleared* bit is the alarm). One function for both,
    with the polarity said by the map, so "laser failed" means the same on every counter.
    """
    if active_good:
        return [b for b in bit_numbers if not (value >> b) & 1]
    return [b for b in bit_numbers if (value >> b) & 1]
