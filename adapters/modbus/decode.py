"""Registers → typed values. Pure functions, no I/O, so every wire convention is tested without a socket.

Order of work for one point (the Home Assistant order, minus the parts that belong to the core):
pick the words in the device's word order, unpack with plain struct operations, reject what is not a
value (NaN, infinity, a wrong register count, text that is not ASCII). Scale, offset and range are
*not* applied here: the core's normaliser applies them from the same map, for every protocol.

A decoder is built once per point (:func:`decoder_for`) and called on every read with the point's
registers as they came off the wire (big-endian bytes, in the order received: the same bytes that are
kept as the reading's ``raw``), so the hot path slices bytes and calls ``struct`` and nothing else. It
raises :class:`~gateway.errors.DecodeError` and never returns a stand-in value. The register-list
functions (``uint32([hi, lo])``...) are the same decoders, for callers and tests that think in registers.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from gateway.errors import DecodeError

WordOrder = Literal["big", "little"]
PointType = Literal["uint16", "int16", "uint32", "int32", "float32", "string", "bits", "bool"]
Table = Literal["holding", "input", "coil", "discrete"]
Value = bool | int | float | str
#: Decodes one point from its raw bytes (registers big-endian; for coils one byte 0/1 per bit).
Decoder = Callable[[bytes], Value]

#: How many registers each fixed-size type spans (string and bits take their count from the point).
REGISTERS_PER_TYPE: dict[str, int] = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "bool": 1}

_U16, _I16 = struct.Struct(">H"), struct.Struct(">h")
_U32, _I32, _F32 = struct.Struct(">I"), struct.Struct(">i"), struct.Struct(">f")


def registers_to_bytes(regs: Sequence[int]) -> bytes:
    """The registers as they were on the wire: each big-endian, in the order received."""
    try:
        return struct.pack(f">{len(regs)}H", *regs)
    except struct.error as exc:
        raise DecodeError(f"not 16-bit registers: {list(regs)}") from exc


def _need(raw: bytes, registers: int, what: str) -> None:
    if len(raw) != 2 * registers:
        got = len(raw) / 2
        raise DecodeError(f"{what} needs {registers} register{'s' if registers != 1 else ''}, got {got:g}")


def _swap_words(raw: bytes) -> bytes:
    """Low word first on the wire → high word first, so one struct format serves both orders."""
    return raw[2:4] + raw[0:2]


def _fixed(fmt: struct.Struct, registers: int, what: str, word_order: WordOrder) -> Decoder:
    swap = word_order == "little" and registers == 2

    def decode(raw: bytes) -> int:
        if len(raw) != 2 * registers:
            _need(raw, registers, what)
        value: int = fmt.unpack(_swap_words(raw) if swap else raw)[0]
        return value

    return decode


def _float32(word_order: WordOrder) -> Decoder:
    """IEEE-754 single, bytes big-endian within each word; the word order is the device's.

    Lighthouse writes its analog floats low word first although its integers are high word first,
    which is why the map carries a separate ``float_word_order``.
    """
    swap = word_order == "little"

    def decode(raw: bytes) -> float:
        if len(raw) != 4:
            _need(raw, 2, "float32")
        packed = _swap_words(raw) if swap else raw
        value: float = _F32.unpack(packed)[0]
        if not math.isfinite(value):
            raise DecodeError(f"float32 registers 0x{raw[:2].hex().upper()} 0x{raw[2:].hex().upper()} are {value}"
                              " (not a number)")
        return shortest_float32(value, packed)

    return decode


def shortest_float32(value: float, packed: bytes) -> float:
    """The shortest decimal that is the same float32: 21.5 stays 21.5 and 19.9 reads 19.9, not
    19.899999618530273. Exact, not rounding: the decimal packs back to the very bytes the device sent."""
    for digits in (6, 7, 8):
        candidate = float(f"{value:.{digits}g}")
        if _F32.pack(candidate) == packed:
            return candidate
    return float(f"{value:.9g}")  # 9 significant digits always round-trip a float32


def _string(count: int) -> Decoder:
    """Two ASCII characters per register, first in the high byte, trimmed at the first NUL."""

    def decode(raw: bytes) -> str:
        _need(raw, count, "string")
        end = raw.find(b"\x00")
        data = raw if end < 0 else raw[:end]
        try:
            return data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"string is not ASCII: {data!r}") from exc

    return decode


def _bit_field(bit: int, width: int) -> Decoder:
    """``width`` bits of one register starting at ``bit`` (e.g. the low byte of an AirNet state word)."""
    mask = (1 << width) - 1

    def decode(raw: bytes) -> int:
        if len(raw) != 2:
            _need(raw, 1, "bit field")
        return (int.from_bytes(raw, "big") >> bit) & mask

    return decode


def _register_bit(bit: int, invert: bool) -> Decoder:
    def decode(raw: bytes) -> bool:
        if len(raw) != 2:
            _need(raw, 1, "bool")
        return bool((int.from_bytes(raw, "big") >> bit) & 1) is not invert

    return decode


def _coil(invert: bool) -> Decoder:
    """A coil or discrete input as read (one byte 0/1)."""

    def decode(raw: bytes) -> bool:
        if len(raw) != 1:
            raise DecodeError(f"bool needs 1 bit, got {len(raw)}")
        return bool(raw[0]) is not invert

    return decode


def decoder_for(
    type_: PointType,
    *,
    table: Table = "holding",
    word_order: WordOrder = "big",
    count: int | None = None,
    bit: int | None = None,
    width: int | None = None,
    invert: bool = False,
) -> Decoder:
    """The decoder of one point, chosen once so a read does no dispatch on the type."""
    if table in ("coil", "discrete"):
        return _coil(invert)
    if type_ == "bool":
        if bit is None:
            raise ValueError("a bool in a register needs its bit")
        return _register_bit(bit, invert)
    if bit is not None:
        return _bit_field(bit, width or 1)
    if type_ == "uint16":
        return _fixed(_U16, 1, "uint16", word_order)
    if type_ == "int16":
        return _fixed(_I16, 1, "int16", word_order)
    if type_ == "uint32":
        return _fixed(_U32, 2, "uint32", word_order)
    if type_ == "int32":
        return _fixed(_I32, 2, "int32", word_order)
    if type_ == "float32":
        return _float32(word_order)
    if type_ == "string":
        return _string(count or 1)
    if type_ == "bits":
        n = count or 1
        return _fixed(_U16 if n == 1 else _U32, n, "bits", word_order)
    raise ValueError(f"unknown point type {type_!r}")


# -- the same decoders, for registers given as ints ------------------------------------------------


def uint16(regs: Sequence[int]) -> int:
    return int(decoder_for("uint16")(registers_to_bytes(regs)))


def int16(regs: Sequence[int]) -> int:
    return int(decoder_for("int16")(registers_to_bytes(regs)))


def uint32(regs: Sequence[int], word_order: WordOrder = "big") -> int:
    """Big word order is high word first (Lighthouse and AirNet integers)."""
    return int(decoder_for("uint32", word_order=word_order)(registers_to_bytes(regs)))


def int32(regs: Sequence[int], word_order: WordOrder = "big") -> int:
    return int(decoder_for("int32", word_order=word_order)(registers_to_bytes(regs)))


def float32(regs: Sequence[int], word_order: WordOrder = "big") -> float:
    return float(decoder_for("float32", word_order=word_order)(registers_to_bytes(regs)))


def string(regs: Sequence[int], count: int) -> str:
    return str(decoder_for("string", count=count)(registers_to_bytes(regs)))


def bits(regs: Sequence[int], word_order: WordOrder = "big") -> int:
    """A bit-mapped word (or pair of words) as one unsigned integer, bit 0 the least significant."""
    if len(regs) not in (1, 2):
        raise DecodeError(f"bits needs 1 or 2 registers, got {len(regs)}")
    return int(decoder_for("bits", count=len(regs), word_order=word_order)(registers_to_bytes(regs)))


def bit_field(regs: Sequence[int], bit: int, width: int) -> int:
    return int(decoder_for("uint16", bit=bit, width=width)(registers_to_bytes(regs)))


def register_bit(regs: Sequence[int], bit: int) -> bool:
    return bool(decoder_for("bool", bit=bit)(registers_to_bytes(regs)))


def coil(values: Sequence[bool]) -> bool:
    return bool(decoder_for("bool", table="coil")(bytes(1 if v else 0 for v in values)))


def alarm_bits(value: int, bit_numbers: Iterable[int], *, active_good: bool) -> list[int]:
    """Which of ``bit_numbers`` are in their alarm state.

    Lighthouse status bits are active-alarm (a set bit is the alert); PMS AirNet bits are active-good
    (a set bit says the laser or flow is good, so a *cleared* bit is the alarm). One function for both,
    with the polarity said by the map, so "laser failed" means the same on every counter.
    """
    if active_good:
        return [b for b in bit_numbers if not (value >> b) & 1]
    return [b for b in bit_numbers if (value >> b) & 1]
