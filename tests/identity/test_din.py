"""ISBT 128 DINs: the worked Mod 37-2 examples are accepted, a wrong check character or flag is refused."""

from __future__ import annotations

import pytest

from gateway.identity import mod37_2, parse_din


@pytest.mark.parametrize(
    ("din", "checksum", "char", "flags"),
    [
        ("G123498654321", 17, "H", "77"),  # the Red Book's worked example
        ("A999914123456", 23, "N", "83"),
        ("W123424000001", 20, "K", "80"),
        ("W123425000001", 3, "3", "63"),
    ],
)
def test_worked_examples(din: str, checksum: int, char: str, flags: str) -> None:
    assert mod37_2(din) == checksum
    parsed = parse_din(f"{din}{char}")
    assert (parsed.value, parsed.check_character, parsed.barcode_flags) == (din, char, flags)
    assert parse_din(f"={din}{flags}") == parsed  # the barcode form
    assert parse_din(f"{din[:5]} {din[5:7]} {din[7:]} {char}") == parsed  # as printed, eye-readable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("G123498654321X", "check character is X, but G123498654321 gives H: mistyped"),
        ("=G12349865432178", "check flags are 78, but G123498654321 gives 77"),
        ("=G12349865432100", "flags 00 carry no check"),
        ("G123498654321", "no check character"),
        ("O123498654321H", "expected 13 characters, a facility code"),
        ("G12349865432H", "expected 13 characters"),
    ],
)
def test_a_wrong_din_is_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_din(text)
