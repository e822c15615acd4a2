"""The freezer line protocol without a line: the README's worked lines, every way a line must be refused,
the translator's records (run record, alarms on change, probe faults), and fuzzing: random and mutated
bytes never raise and never yield a value from a corrupt line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.serial.crf.codec import LineError, RunEnd, RunStart, Sample, crc16, frame, parse_line
from adapters.serial.crf.translate import LINE_ERROR_QUALITY, LineAssembler, Translator
from gateway.records import Quality

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
#: The worked example of the README, CRC computed by hand there.
SAMPLE = b"$S,20261122T073000Z,R0042,5,R,600,-15.00,-15.10,-11.84,-,3.4,0000*635E"
GOOD_LINES = [
    SAMPLE,
    frame("S", "20261122T073000Z", "-", "0", "I", "0", "4.00", "4.02", "OPEN", "5.1", "0.4", "0009")[:-2],
    frame("ID", "cgt-gateway", "CRF-SIM 560", "SIM-0001", "1.0.0")[:-2],
    frame("PRF", "classic-cell-therapy", "1", "11743B3C", "7")[:-2],
    frame("PRF", "-")[:-2],
    frame("RUN", "START", "20261122T070000Z", "R0042", "classic-cell-therapy", "11743B3C", "LOT-7")[:-2],
    frame("RUN", "ACTIVE", "20261122T070000Z", "R0042", "classic-cell-therapy", "11743B3C", "-")[:-2],
    frame("RUN", "END", "20261122T080200Z", "R0042", "COMPLETE", "372")[:-2],
    frame("RUN", "IDLE")[:-2],
    frame("EVT", "20261122T073000Z", "POWER_RESTORED", "power back after 120 s; run R0042 resumed")[:-2],
    frame("ACK", "START")[:-2],
    frame("NAK", "START", "run R0042 is going")[:-2],
]


def test_crc_is_ccitt_false_and_the_readme_example_checks() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert frame("S", *SAMPLE[3:-5].decode().split(",")) == SAMPLE + b"\r\n"


def test_a_sample_line_decodes_to_typed_fields() -> None:
    s = parse_line(SAMPLE)
    assert s == Sample(
        time=datetime(2026, 11, 22, 7, 30, tzinfo=UTC), run_id="R0042", step=5, step_type="ramp",
        step_elapsed_s=600, set_point=-15.0, chamber=s.chamber, probes=s.probes, valve_pct=3.4, alarms=0,
    )
    assert s.chamber.value == -15.1 and [p.value for p in s.probes] == [-11.84]


@pytest.mark.parametrize("line", GOOD_LINES, ids=lambda b: b[:12].decode())
def test_every_message_type_parses(line: bytes) -> None:
    message = parse_line(line)
    assert type(message).__name__ == {"S": "Sample", "ID": "Identity", "PRF": "LoadedProfile", "EVT": "DeviceEvent",
                                      "ACK": "Reply", "NAK": "Reply"}.get(line[1:].split(b",")[0].decode(),
                                                                         type(message).__name__)


def test_run_lines_carry_the_run_record() -> None:
    start = parse_line(GOOD_LINES[5])
    assert start == RunStart(datetime(2026, 11, 22, 7, 0, tzinfo=UTC), "R0042", "classic-cell-therapy", "11743B3C",
                             "LOT-7")
    assert parse_line(GOOD_LINES[6]) == RunStart(start.time, "R0042", "classic-cell-therapy", "11743B3C", None,
                                                 in_progress=True)
    assert parse_line(GOOD_LINES[7]) == RunEnd(datetime(2026, 11, 22, 8, 2, tzinfo=UTC), "R0042", "complete", 372)


def _body(line: bytes) -> str:
    return line[1:-5].decode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (SAMPLE[:-4] + b"635F", "bad_checksum"),
        (SAMPLE.replace(b"-15.10", b"-15.11"), "bad_checksum"),
        (SAMPLE[1:], "no_start"),
        (b"", "no_start"),
        (SAMPLE[:-5], "bad_frame"),
        (SAMPLE[:-4] + b"635e", "bad_frame"),
        (b"$S,\xff*0000", "bad_frame"),
        (b"$" + b"A" * 300 + b"*0000", "too_long"),
        (frame("XYZ", "1")[:-2], "unknown_message"),
        (frame("S", "20261122T073000Z", "R1")[:-2], "field_count"),
        (frame(*_body(SAMPLE).replace("-15.10", "nan").split(","))[:-2], "bad_field"),
        (frame(*_body(SAMPLE).replace("-15.10", "-1e3").split(","))[:-2], "bad_field"),
        (frame(*_body(SAMPLE).replace("20261122T073000Z", "20261322T073000Z").split(","))[:-2], "bad_field"),
        (frame(*_body(SAMPLE).replace(",3.4,", ",100.1,").split(","))[:-2], "bad_field"),
        (frame(*_body(SAMPLE).replace(",R,", ",X,").split(","))[:-2], "bad_field"),
        (frame(*_body(SAMPLE).replace(",0000", ",00g0").split(","))[:-2], "bad_field"),
        (frame("RUN", "END", "20261122T080200Z", "R0042", "EXPLODED", "1")[:-2], "bad_field"),
        (frame("PRF", "name", "1", "11743B3C")[:-2], "field_count"),
    ],
)
def test_malformed_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(LineError) as err:
        parse_line(line)
    assert err.value.reason == reason


def translate(*lines: bytes) -> list:
    t = Translator("CRF-1", "crf+serial:///dev/ttyS0")
    assembler = LineAssembler()
    return [t.line(line, NOW) for line in assembler.feed(b"".join(lines))]


def test_a_corrupt_line_is_one_bad_line_error_reading_with_its_raw_bytes() -> None:
    bad = SAMPLE.replace(b"-15.10", b"-05.10") + b"\r\n"
    (result,) = translate(bad)
    (reading,) = result.readings
    assert (reading.point, reading.value, reading.quality) == ("line_error", "bad_checksum", LINE_ERROR_QUALITY)
    assert reading.raw == bad[:-2] and "CRC 635E sent" in (reading.detail or "")
    assert reading.source == "crf+serial:///dev/ttyS0/line/line_error"


def test_an_open_thermocouple_is_a_bad_sensor_reading_and_alarm_bits_come_on_change() -> None:
    first = frame("S", "20261122T073000Z", "-", "0", "I", "0", "4.00", "4.02", "OPEN", "-", "0.4", "0008")
    second = frame("S", "20261122T073010Z", "-", "0", "I", "10", "4.00", "4.01", "OPEN", "-", "0.4", "0008")
    third = frame("S", "20261122T073020Z", "-", "0", "I", "20", "4.00", "4.01", "4.50", "-", "0.4", "0000")
    r1, r2, r3 = translate(first, second, third)
    sample = next(r for r in r1.readings if r.point == "sample_temperature")
    assert sample.value is None and sample.quality is Quality.BAD_SENSOR_FAILURE
    assert "OPEN: thermocouple open circuit" in (sample.detail or "")
    assert sample.source_time == datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    alarms = lambda r: {x.point: x.value for x in r.readings if x.point.startswith("alarm_")}  # noqa: E731
    assert alarms(r1) == {"alarm_ln2_supply": False, "alarm_door_open": False, "alarm_chamber_probe": False,
                          "alarm_sample_probe": True, "alarm_device_deviation": False, "alarm_power_fail": False}
    assert alarms(r2) == {}
    assert alarms(r3) == {"alarm_sample_probe": False}


def test_a_run_gives_its_record_and_its_context() -> None:
    start = frame("RUN", "START", "20261122T070000Z", "R0042", "classic-cell-therapy", "11743B3C", "LOT-7")
    s = frame("S", "20261122T070010Z", "R0042", "1", "H", "10", "4.00", "4.01", "7.90", "-", "0.4", "0000")
    end = frame("RUN", "END", "20261122T080200Z", "R0042", "COMPLETE", "2")
    r_start, r_sample, r_end = translate(start, s, end)
    assert r_start.events == [("run_started", "run R0042 profile classic-cell-therapy checksum 11743B3C lot LOT-7")]
    assert r_start.queries == [frame("PRF?")], "the loaded profile is asked for again at run start"
    assert {r.point: r.value for r in r_start.readings} == {
        "run_id": "R0042", "profile_name": "classic-cell-therapy", "profile_checksum": "11743B3C",
        "run_lot": "LOT-7", "run_state": "running"}
    assert (r_sample.lot_id, r_sample.process_step) == ("LOT-7", "R0042/1")
    assert r_end.events == [("run_ended", "run R0042 complete: 2 samples (1 received)")]
    values = {r.point: r for r in r_end.readings}
    assert values["run_state"].value == "complete" and values["run_samples"].value == 2
    received = values["run_samples_received"]
    assert received.value == 1 and received.quality is Quality.UNCERTAIN_SUB_NORMAL
    assert received.detail == "the freezer sent 2; 1 missing"
    assert (r_end.lot_id, r_end.process_step) == ("LOT-7", "R0042")


def test_the_assembler_bounds_a_line_without_an_end() -> None:
    assembler = LineAssembler()
    assert assembler.feed(b"x" * 1000) == []
    (err, good) = assembler.feed(b"yyy\r\n" + SAMPLE + b"\r\n")
    assert isinstance(err, LineError) and err.reason == "too_long"
    assert good == SAMPLE


# -- fuzzing ----------------------------------------------------------------------------------------
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _corrupt_only(results: list) -> None:
    for result in results:
        for reading in result.readings:
            assert reading.point == "line_error" and reading.quality is LINE_ERROR_QUALITY, reading
        assert not result.events and not result.queries


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_raise_and_never_give_a_value(chunks: list[bytes]) -> None:
    t, assembler = Translator("CRF-1", "crf+serial://x"), LineAssembler()
    for chunk in chunks:
        _corrupt_only([t.line(line, NOW) for line in assembler.feed(chunk)])


@FUZZ
@given(st.sampled_from(GOOD_LINES), st.data())
def test_a_line_with_one_byte_changed_gives_only_a_line_error(line: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(line) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != line[i] and b != ord("\n")))
    mutated = line[:i] + bytes([new]) + line[i + 1:]
    if mutated.rstrip(b"\r") == line:  # a CR appended where the line ends is the same line
        return
    _corrupt_only(translate(mutated + b"\r\n"))


@FUZZ
@given(st.sampled_from(GOOD_LINES), st.data())
def test_a_cut_or_spliced_line_gives_only_a_line_error(line: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(line) - 1))
    other = data.draw(st.sampled_from(GOOD_LINES))
    spliced = line[:cut] + other[data.draw(st.integers(1, len(other) - 1)):]
    for candidate in (line[:cut], spliced):
        if candidate in GOOD_LINES:
            continue
        _corrupt_only(translate(candidate + b"\r\n"))


def test_a_sample_line_compares_the_freezer_clock_and_no_other_line_does() -> None:
    """A sample goes out as it is taken, so its time against the receipt is the clock offset; a run line's
    time may be the run's start (RUN,ACTIVE at a connect), so it is never taken as the clock."""
    start = frame("RUN", "ACTIVE", "20261122T070000Z", "R0042", "classic-cell-therapy", "11743B3C", "-")
    event = frame("EVT", "20261122T075959Z", "POWER_RESTORED", "power back")
    ahead = frame("S", "20261122T080500Z", "R0042", "5", "R", "600", "-15.00", "-15.10", "-11.84", "-", "3.4", "0000")
    r_start, r_event, r_sample, r_ahead = translate(start, event, SAMPLE + b"\r\n", ahead)
    assert r_start.clock_offset_s is None and r_event.clock_offset_s is None
    assert r_sample.clock_offset_s == -1800.0  # 07:30:00 on the freezer, received at 08:00:00
    assert r_ahead.clock_offset_s == 300.0
    (chamber,) = [r for r in r_ahead.readings if r.point == "chamber_temperature"]
    assert (chamber.source_time - chamber.gateway_time).total_seconds() == r_ahead.clock_offset_s  # type: ignore[operator]
