"""ISBT 128 Donation Identification Numbers: parsing and the ISO/IEC 7064 Mod 37-2 check.

A DIN is 13 characters: the facility (FIN: a letter or digit then 4 digits), the year (2 digits) and
a sequence (6 digits). Labels carry it with a check: the eye-readable boxed check character, or in the
barcode ``=`` DIN + two flag characters, where flags 60–96 are the Mod 37-2 checksum + 60. A DIN typed
or scanned without a check cannot be told from a typo, so it is refused.

Accepted forms (spaces ignored): ``G123498654321H`` and ``G1234 98 654321 H`` (check character),
``=G12349865432177`` (barcode data with Type 2 flags).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_DIN = re.compile(r"^[A-NP-Z1-9]\d{4}\d{2}\d{6}$")


def mod37_2(din13: str) -> int:
    """The ISO/IEC 7064 Mod 37-2 checksum (0–36) of a 13-character DIN."""
    p = 0
    for char in din13:
        p = ((p + ALPHABET.index(char)) * 2) % 37
    return (38 - p) % 37


@dataclass(frozen=True, slots=True)
class Din:
    """A checked DIN. ``value`` is the 13-character DIN proper, as records carry it."""

    value: str

    @property
    def check_character(self) -> str:
        return ALPHABET[mod37_2(self.value)]

    @property
    def barcode_flags(self) -> str:
        return f"{mod37_2(self.value) + 60:02d}"

    @property
    def eye_readable(self) -> str:
        v = self.value
        return f"{v[:5]} {v[5:7]} {v[7:]} {self.check_character}"

    def __str__(self) -> str:
        return self.value


def parse_din(text: str) -> Din:
    """A checked DIN, or ValueError saying in one line what is wrong with ``text``."""
    raw = "".join(text.split()).upper()
    if raw.startswith("="):
        body, flags = raw[1:14], raw[14:]
        _check_shape(body, text)
        if not (len(flags) == 2 and flags.isdigit()):
            raise ValueError(f"DIN {text!r}: barcode data must be = + 13 characters + 2 flag digits")
        if not 60 <= int(flags) <= 96:
            raise ValueError(
                f"DIN {text!r}: flags {flags} carry no check (only Type 2 flags 60–96 do); "
                "enter the DIN with its boxed check character instead"
            )
        expected = mod37_2(body) + 60
        if int(flags) != expected:
            raise ValueError(f"DIN {text!r}: check flags are {flags}, but {body} gives {expected}: mistyped or misread")
        return Din(body)
    body, check = raw[:13], raw[13:]
    _check_shape(body, text)
    if not check:
        raise ValueError(
            f"DIN {text!r}: no check character; add the boxed check character from the label "
            "or scan the barcode with its flags"
        )
    if len(check) != 1 or check not in ALPHABET:
        raise ValueError(f"DIN {text!r}: the check character must be one of 0-9, A-Z or *")
    expected_char = ALPHABET[mod37_2(body)]
    if check != expected_char:
        raise ValueError(f"DIN {text!r}: check character is {check}, but {body} gives {expected_char}: mistyped")
    return Din(body)


def _check_shape(body: str, text: str) -> None:
    if not _DIN.match(body):
        raise ValueError(
            f"DIN {text!r}: expected 13 characters, a facility code (letter or digit, not O, then 4 digits), "
            "a 2-digit year and a 6-digit sequence"
        )
