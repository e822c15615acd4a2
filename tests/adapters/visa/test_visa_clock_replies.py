"""An SCPI instrument's clock replies to a UTC instant: formats, midnight between two queries, the hour
daylight saving time repeats or skips. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from adapters.visa import VisaEquipmentConfig, load_instrument_map
from adapters.visa.clock import ClockReplyError, clock_offset, local_moment, parse_date, parse_time, to_utc
from adapters.visa.instrumentmap import ClockQueries
from gateway.config import PROJECT_CONFIG_DIR

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("reply", "expected"), [
    ("2026,10,25", date(2026, 10, 25)), ("+2026,+10,+25\n", date(2026, 10, 25)), (" 2027 , 3 , 28 ", date(2027, 3, 28)),
])
def test_dates_as_instruments_write_them(reply: str, expected: date) -> None:
    assert parse_date(reply) == expected


@pytest.mark.parametrize(("reply", "expected"), [
    ("9,15,3", time(9, 15, 3)), ("+09,+15,+03.123", time(9, 15, 3, 123000)),
    ("23,59,59.9999996", time(23, 59, 59, 999999)),
    ("23,59,60", time(23, 59, 59, 999999)),  # a leap second stays within its minute
])
def test_times_as_instruments_write_them(reply: str, expected: time) -> None:
    assert parse_time(reply) == expected


@pytest.mark.parametrize(("parse", "reply", "message"), [
    (parse_date, "2026-10-25", "is not three comma-separated numbers"),
    (parse_date, "2026,2,30", "is not a calendar date"),
    (parse_date, "2026,10.5,25", "has a fraction"),
    (parse_time, "24,0,0", "is not hour 0-23"),
    (parse_time, "12,60,0", "is not hour 0-23"),
    (parse_time, '-113,"Undefined header"', "is not three comma-separated numbers"),
    (parse_time, "\u00b5#?", "is not three comma-separated numbers"),
    (parse_date, "9" * 40 + ",11,22", "is not a calendar date"),  # found by the fuzzer: OverflowError
])
def test_what_is_not_a_clock_reply_says_so(parse: object, reply: str, message: str) -> None:
    with pytest.raises(ClockReplyError, match=message):
        parse(reply)  # type: ignore[operator]


@pytest.mark.parametrize(("local", "zone", "last"), [
    (datetime(1, 1, 1, 0, 0), ZoneInfo("Asia/Tokyo"), None),
    (datetime(9999, 12, 31, 23, 0), ZoneInfo("America/New_York"), None),
    (datetime(2026, 11, 22, 9, 0), BERLIN, 3e11),  # the last comparison put the clock beyond year 9999
])
def test_a_clock_with_no_utc_instant_is_unreadable_not_an_error(local: datetime, zone: ZoneInfo,
                                                                last: float | None) -> None:
    """Found by the fuzzer: an OverflowError escaped the scan, so such an instrument was never read."""
    with pytest.raises(ClockReplyError, match="outside the dates a clock is compared at"):
        clock_offset(local, zone, datetime(2026, 11, 22, 8, 0, tzinfo=UTC), last)


def test_midnight_between_the_date_queries_takes_the_date_the_time_belongs_to() -> None:
    d1, d2 = date(2026, 12, 31), date(2027, 1, 1)
    assert local_moment(d1, time(23, 59, 59, 900000), d2) == datetime(2026, 12, 31, 23, 59, 59, 900000)
    assert local_moment(d1, time(0, 0, 0, 100000), d2) == datetime(2027, 1, 1, 0, 0, 0, 100000)
    assert local_moment(d2, time(12, 0), d2) == datetime(2027, 1, 1, 12, 0)


def test_the_hour_repeated_when_dst_ends_is_read_as_the_one_the_clock_is_in() -> None:
    # 25 Oct 2026: Berlin goes from 03:00 CEST back to 02:00 CET (01:00 UTC); 02:30 happens twice
    local = datetime(2026, 10, 25, 2, 30)
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert to_utc(local, BERLIN, first + timedelta(minutes=2)) == first
    assert to_utc(local, BERLIN, second - timedelta(minutes=2)) == second
    # an instrument 5 s ahead, read at 01:29:55 UTC (its second 02:30), whose last comparison said +5 s
    assert clock_offset(local, BERLIN, second - timedelta(seconds=5), 5.0) == pytest.approx(5.0)
    # the same reading, first comparison of a session: nearest to the gateway's clock
    assert clock_offset(local, BERLIN, second - timedelta(seconds=5), None) == pytest.approx(5.0)


def test_the_hour_skipped_when_dst_starts_and_a_zone_without_dst() -> None:
    # 28 Mar 2027: Berlin goes from 02:00 CET to 03:00 CEST (01:00 UTC); 02:30 never happens there
    gap = datetime(2027, 3, 28, 2, 30)
    expected = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # an instrument that did not follow DST
    assert to_utc(gap, BERLIN, expected) == expected
    fixed = ZoneInfo("Etc/GMT-1")  # one hour ahead of UTC all year
    assert to_utc(gap, fixed, expected) == expected
    assert clock_offset(datetime(2026, 11, 22, 10, 0, 3), fixed, datetime(2026, 11, 22, 9, 0, tzinfo=UTC), None) == 3.0


def test_the_clock_settings_are_checked_at_load() -> None:
    entry = {"id": "LN2-1", "class": "cryo_storage", "kind": "visa", "resource": "TCPIP::10.0.0.7::5025::SOCKET",
             "instrument_map": "scpi-temperature-daq",
             "identity": {"manufacturer": "K", "model": "M", "serial": None}}
    assert VisaEquipmentConfig.model_validate(entry).zone == ZoneInfo("UTC")
    assert VisaEquipmentConfig.model_validate({**entry, "device_timezone": "Europe/Berlin"}).zone == BERLIN
    with pytest.raises(ValidationError, match="'CET-ish' is not an IANA time zone"):
        VisaEquipmentConfig.model_validate({**entry, "device_timezone": "CET-ish"})
    with pytest.raises(ValidationError, match="is not a query"):
        ClockQueries(time_query="SYST:TIME")
    shipped = load_instrument_map(PROJECT_CONFIG_DIR / "visa-maps" / "scpi-temperature-daq.yaml")
    assert shipped.clock == ClockQueries(every_n_scans=60)
