"""Registers → values, exhaustively, without a socket: every type, both word orders, the sign edges,
the vendors' packing examples (DOMAIN.md 2.1) and every way a decode must refuse."""

from __future__ import annotations

import math
import struct

import pytest

from adapters.modbus import decode
from adapters.modbus.decode import alarm_bits, decoder_for, registers_to_bytes, shortest_float32
from gateway.errors import DecodeError


def f32_words(value: float) -> tuple[int, int]:
    """(high word, low word) of an IEEE float32, computed independently of the code under test."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return hi, lo


@pytest.mark.parametrize(
    ("reg", "u", "s"),
    [(0x0000, 0, 0), (0x0001, 1, 1), (0x7FFF, 32767, 32767), (0x8000, 32768, -32768),
     (0x8001, 32769, -32767), (0xFFFE, 65534, -2), (0xFFFF, 65535, -1)],
)
def test_16_bit_unsigned_and_signed_at_the_edges(reg: int, u: int, s: int) -> None:
    assert decode.uint16([reg]) == u
    assert decode.int16([reg]) == s
    assert decoder_for("uint16")(registers_to_bytes([reg])) == u
    assert decoder_for("int16")(registers_to_bytes([reg])) == s


@pytest.mark.parametrize(
    ("value", "signed"),
    [(0, 0), (1, 1), (0x0000_FFFF, 65535), (0x0001_0000, 65536), (0x7FFF_FFFF, 2**31 - 1),
     (0x8000_0000, -(2**31)), (0xFFFF_FFFF, -1), (0xFFFF_0000, -65536), (1_234_567, 1_234_567)],
)
def test_32_bit_integers_in_both_word_orders(value: int, signed: int) -> None:
    hi, lo = value >> 16, value & 0xFFFF
    assert decode.uint32([hi, lo], "big") == value
    assert decode.uint32([lo, hi], "little") == value
    assert decode.int32([hi, lo], "big") == signed
    assert decode.int32([lo, hi], "little") == signed
    assert decoder_for("uint32", word_order="little")(registers_to_bytes([lo, hi])) == value
    assert decoder_for("int32", word_order="big")(registers_to_bytes([hi, lo])) == signed


def test_lighthouse_count_packing_example() -> None:
    # DOMAIN.md 2.1: count 1 234 567 -> hi 0x0012, lo 0xD687 (integers high word first).
    assert decode.uint32([0x0012, 0xD687]) == 1_234_567
    assert decode.uint32([0xD687, 0x0012], "little") == 1_234_567
    assert decode.uint32([0xD687, 0x0012], "big") != 1_234_567  # the classic word-order bug


def test_lighthouse_float_packing_example_low_word_first() -> None:
    # DOMAIN.md 2.1: 21.5 degC -> reg N (low word) 0x0000, reg N+1 (high word) 0x41AC.
    assert decode.float32([0x0000, 0x41AC], "little") == 21.5
    assert decode.float32([0x41AC, 0x0000], "big") == 21.5
    misread = decode.float32([0x0000, 0x41AC], "big")  # read with the integer word order: a tiny denormal
    assert misread != 21.5 and abs(misread) < 1e-30


@pytest.mark.parametrize("value", [0.0, -0.0, 1.0, -1.0, 21.5, -40.25, 3.25, 1e-38, 3.0e38, 0.1, 19.9, 45.4])
def test_float32_round_trips_in_both_word_orders(value: float) -> None:
    hi, lo = f32_words(value)
    for regs, order in (([hi, lo], "big"), ([lo, hi], "little")):
        got = decode.float32(regs, order)  # type: ignore[arg-type]
        assert struct.pack(">f", got) == struct.pack(">f", value)  # the very same float32
        assert math.copysign(1.0, got) == math.copysign(1.0, value)


def test_float32_reads_as_the_shortest_decimal_of_the_same_float32() -> None:
    hi, lo = f32_words(19.9)
    assert decode.float32([hi, lo]) == 19.9  # not 19.899999618530273
    packed = struct.pack(">f", 1 / 3)
    assert struct.pack(">f", shortest_float32(struct.unpack(">f", packed)[0], packed)) == packed


@pytest.mark.parametrize("words", [(0x7FC0, 0x0000), (0xFFC0, 0x0000), (0x7F80, 0x0000), (0xFF80, 0x0000),
                                   (0x7F80, 0x0001)])
def test_nan_and_infinity_are_decode_errors(words: tuple[int, int]) -> None:
    with pytest.raises(DecodeError, match="not a number"):
        decode.float32(list(words), "big")
    with pytest.raises(DecodeError):
        decode.float32([words[1], words[0]], "little")


@pytest.mark.parametrize(
    ("fn", "regs"),
    [(decode.uint16, []), (decode.uint16, [1, 2]), (decode.int16, []), (decode.uint32, [1]),
     (decode.uint32, [1, 2, 3]), (decode.int32, []), (decode.float32, [1]),
     (lambda r: decode.register_bit(r, 0), [1, 2])],
)
def test_wrong_register_count_is_a_decode_error(fn: object, regs: list[int]) -> None:
    with pytest.raises(DecodeError, match="needs"):
        fn(regs)  # type: ignore[operator]


def test_strings_two_chars_per_register_trimmed_at_nul() -> None:
    regs = [0x5245, 0x4D4F, 0x5445, 0x0000, 0x4142]  # "REMOTE\0AB": text after the NUL is padding
    assert decode.string(regs, 5) == "REMOTE"
    assert decode.string([0x4142, 0x4300], 2) == "ABC"
    assert decode.string([0x0000], 1) == ""
    assert decode.string([0x2041], 1) == " A"  # spaces are data, only NUL ends the text
    assert decoder_for("string", count=2)(b"OK  ") == "OK  "
    with pytest.raises(DecodeError, match="needs 3"):
        decode.string([0x4142, 0x4344], 3)
    with pytest.raises(DecodeError, match="not ASCII"):
        decode.string([0xC3A9], 1)


def test_bits_words_and_single_bits() -> None:
    assert decode.bits([0b1010]) == 10
    assert decode.bits([0x0001, 0x0006]) == 0x0001_0006
    assert decode.bits([0x0006, 0x0001], "little") == 0x0001_0006
    with pytest.raises(DecodeError):
        decode.bits([1, 2, 3])
    two = decoder_for("bits", count=2)
    assert two(b"\x00\x00\x00\x06") == 6
    with pytest.raises(DecodeError, match="bits needs 2"):
        two(b"\x00\x06")
    for bit in range(16):
        assert decode.register_bit([1 << bit], bit) is True
        assert decode.register_bit([0xFFFF ^ (1 << bit)], bit) is False
    assert decoder_for("bool", bit=2)(b"\x00\x04") is True
    assert decoder_for("bool", bit=2, invert=True)(b"\x00\x04") is False  # an active-low bit
    assert decoder_for("bool", bit=10)(b"\x04\x00") is True  # bits count from the low byte's LSB


def test_bit_fields_take_a_byte_of_a_state_word() -> None:
    # AirNet 30214: low byte the state, high byte the sub-state.
    assert decode.bit_field([0x0203], 0, 8) == 3
    assert decode.bit_field([0x0203], 8, 8) == 2
    assert decoder_for("uint16", bit=0, width=2)(b"\x00\x07") == 3


def test_coils_decode_as_bools() -> None:
    assert decoder_for("bool", table="coil")(b"\x01") is True
    assert decoder_for("bool", table="discrete")(b"\x00") is False
    assert decoder_for("bool", table="coil", invert=True)(b"\x01") is False
    assert decode.coil([True]) is True
    with pytest.raises(DecodeError):
        decode.coil([True, False])


def test_decoders_take_the_raw_wire_bytes_and_check_their_length() -> None:
    u32 = decoder_for("uint32")
    assert u32(b"\x00\x12\xd6\x87") == 1_234_567
    for wrong in (b"", b"\x00\x12", b"\x00\x12\xd6", b"\x00\x12\xd6\x87\x00\x00"):
        with pytest.raises(DecodeError, match="uint32 needs 2 registers"):
            u32(wrong)
    with pytest.raises(DecodeError, match="not 16-bit registers"):
        registers_to_bytes([0x10000])


def test_decoder_for_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="needs its bit"):
        decoder_for("bool")
    with pytest.raises(ValueError, match="unknown point type"):
        decoder_for("float64")  # type: ignore[arg-type]


def test_raw_bytes_are_the_registers_big_endian_in_received_order() -> None:
    assert registers_to_bytes([0x0012, 0xD687]) == b"\x00\x12\xd6\x87"
    assert registers_to_bytes([]) == b""


@pytest.mark.parametrize(
    ("value", "active_good", "alarms"),
    [
        (0b000, False, []),  # Lighthouse: nothing set, nothing wrong
        (0b001, False, [0]),  # laser alert
        (0b110, False, [1, 2]),  # the manual's example: flow alert + overflow = 6
        (0b111, True, []),  # AirNet: laser, flow and hardware all good
        (0b110, True, [0]),  # laser-good cleared: the laser is the alarm
        (0b000, True, [0, 1, 2]),  # nothing good at all
    ],
)
def test_status_polarity(value: int, active_good: bool, alarms: list[int]) -> None:
    assert alarm_bits(value, [0, 1, 2], active_good=active_good) == alarms
