"""SCPI replies to values: numbers (overload is never a temperature), channel lists, *IDN?, SYST:ERR?."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.visa.scpi import parse_error, parse_identity, parse_number, split_fields
from gateway.records import Quality


@pytest.mark.parametrize(("text", "value"), [
    ("+1.234E+01", 12.34), ("-1.96500000E+02", -196.5), ("-196.5", -196.5), ("12", 12.0), (" +0 ", 0.0),
    ("1.5e-3", 0.0015), (".5", 0.5), ("-4.", -4.0),
])
def test_scpi_numbers_are_read_as_floats(text: str, value: float) -> None:
    number = parse_number(text)
    assert number.value == pytest.approx(value) and number.quality is Quality.GOOD and number.detail is None


@pytest.mark.parametrize(("text", "word"), [
    ("+9.9E37", "overload"), ("9.90000000E+37", "overload"), ("+9.900E+37", "overload"), ("-9.9E37", "underrange"),
    ("9.91E37", "not-a-number"), ("+9.91000000E+37", "not-a-number"),
])
def test_overload_and_not_a_number_are_bad_with_no_value(text: str, word: str) -> None:
    number = parse_number(text)
    assert number.value is None and number.quality is Quality.BAD_SENSOR_FAILURE
    assert word in (number.detail or "") and text in (number.detail or "")


@pytest.mark.parametrize("text", ["", "abc", "1,2", "--1", "1E", "0x10", "NaN", "inf", "1e999", "\ufffd#?"])
def test_anything_else_is_a_decoding_error_that_shows_what_came(text: str) -> None:
    number = parse_number(text)
    assert number.value is None and number.quality is Quality.BAD_DECODING_ERROR and number.detail


@given(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False))
def test_what_an_instrument_prints_in_nr3_reads_back(value: float) -> None:
    number = parse_number(f"{value:+.8E}")
    assert number.quality is Quality.GOOD and number.value is not None
    assert math.isclose(number.value, value, rel_tol=1e-8, abs_tol=1e-300)


@given(st.text(max_size=30))
def test_no_text_makes_the_parser_raise(text: str) -> None:
    number = parse_number(text)
    assert (number.value is None) == (number.quality is not Quality.GOOD)


def test_a_multi_channel_reply_is_one_field_per_channel() -> None:
    assert split_fields("-1.9E+02,-1.8E+02, -1.7E+02 ,+9.9E37") == ["-1.9E+02", "-1.8E+02", "-1.7E+02", "+9.9E37"]
    assert split_fields("  ") == []


def test_identity_has_four_fields() -> None:
    identity = parse_identity("Keysight Technologies,DAQ970A,MY58001234,A.03.01-01.00-03.01-00.01-02-02\n")
    assert identity is not None
    assert (identity.manufacturer, identity.model, identity.serial) == (
        "Keysight Technologies", "DAQ970A", "MY58001234")
    assert parse_identity("just a name") is None and parse_identity("a,b,c,d,e") is None


def test_error_queue_entries() -> None:
    error = parse_error('-113,"Undefined header"')
    assert error is not None and error.is_error and (error.code, error.message) == (-113, "Undefined header")
    assert str(error) == '-113,"Undefined header"'
    empty = parse_error('+0,"No error"')
    assert empty is not None and not empty.is_error
    assert parse_error("-1.9E+02,-1.8E+02") is None and parse_error("garbage") is None
