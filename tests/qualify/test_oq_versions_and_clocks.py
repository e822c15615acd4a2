"""The OQ criteria on result versions and device clocks, judged on hand-made journals, each shown to fail
where it must: a correction naming a hash no earlier version has, a repeat that is a correction, a device
sample journalled twice while the device clock went back, an offset that jumps by an hour at DST, and a
window that is not in the journal."""

from __future__ import annotations

from typing import Any

from gateway.qualify.oq.acceptance import Criterion
from gateway.qualify.oq.filters import RecordFilter
from gateway.qualify.oq.record_checks import clock, clock_offset, corrections, repeats

KEY = "BTA-1/W123426000020/2347811234/TTD"


def record(seq: int, parameter: str = "time_to_detection", value: Any = 1.0, **fields: Any) -> dict[str, Any]:
    """A journal record as the runner reads it back (only the fields the criteria look at)."""
    return {"seq": seq, "equipment_id": "BTA-1", "parameter": parameter, "kind": "measurement", "value": value,
            "quality": "Good", "gateway_time": f"2026-11-22T09:00:{seq:02d}Z", **fields}


def criterion(**spec: Any) -> Criterion:
    return Criterion.model_validate(spec)


def versions(link: str) -> list[dict[str, Any]]:
    """A result, the same result sent again, and a correction whose ``corrects`` is ``link``."""
    return [
        record(1, result_key=KEY, raw_sha256="a" * 64),
        record(2, result_key=KEY, raw_sha256="a" * 64),
        record(3, value=2.5, result_key=KEY, raw_sha256="c" * 64, corrects=link),
    ]


def test_a_correction_naming_the_earlier_version_by_its_hash_passes_and_says_what_changed() -> None:
    verdict = corrections(criterion(corrections={"equipment": "BTA-1", "count": 1}), versions("a" * 64))
    assert verdict.passed, verdict.line()
    assert "seq 3 time_to_detection corrects seq 1 (same result_key and raw_sha256 aaaaaaaaaaaa...): was 1.0, now 2.5" \
        in verdict.observed


def test_a_correction_naming_a_hash_no_earlier_record_has_fails() -> None:
    verdict = corrections(criterion(corrections={"equipment": "BTA-1", "min_count": 0}), versions("b" * 64))
    assert not verdict.passed
    assert "1 link(s) to no earlier version: seq 3 (time_to_detection, " + KEY + ") names bbbbbbbbbbbb..." \
        in verdict.observed


def test_a_correction_linking_to_another_results_hash_or_to_a_later_record_fails() -> None:
    other_key = [record(1, result_key="BTA-1/W1/2/TTD", raw_sha256="a" * 64),
                 record(2, value=2.5, result_key=KEY, raw_sha256="c" * 64, corrects="a" * 64)]
    later = [record(1, value=2.5, result_key=KEY, raw_sha256="c" * 64, corrects="a" * 64),
             record(2, result_key=KEY, raw_sha256="a" * 64)]
    for journal in (other_key, later):
        assert not corrections(criterion(corrections={"equipment": "BTA-1", "min_count": 0}), journal).passed


def test_an_unknown_original_is_counted_apart_and_must_be_expected() -> None:
    journal = versions("unknown")
    assert corrections(criterion(corrections={"equipment": "BTA-1", "count": 0, "unknown": 1}), journal).passed
    refused = corrections(criterion(corrections={"equipment": "BTA-1", "count": 0}), journal)
    assert not refused.passed and "1 'corrects: unknown' at seqs 3" in refused.observed


def test_a_correction_that_changes_nothing_is_not_counted_as_a_corrected_value() -> None:
    journal = [record(1, result_key=KEY, raw_sha256="a" * 64),
               record(2, result_key=KEY, raw_sha256="c" * 64, corrects="a" * 64)]
    verdict = corrections(criterion(corrections={"equipment": "BTA-1", "count": 1}), journal)
    assert not verdict.passed and "1 linked unchanged item(s) (seq 2 (unchanged time_to_detection of seq 1))" \
        in verdict.observed


def test_filters_tell_corrections_from_repeats_and_read_the_clock_offset() -> None:
    original, repeat, fixed = versions("a" * 64)
    assert RecordFilter(correction=False, result_key=KEY).matches(repeat)
    assert not RecordFilter(correction=False).matches(fixed) and RecordFilter(corrects="a" * 64).matches(fixed)
    skewed = record(4, clock_offset_s=299.9)
    assert RecordFilter(clock_offset_min_s=298, clock_offset_max_s=302).matches(skewed)
    assert not RecordFilter(clock_offset_min_s=298).matches(original), "a record without an offset is in no range"
    # the correction is a new version, not a repeat: only the copy sent again is one
    spec = {"equipment": "BTA-1", "correction": False, "count": 1}
    verdict = repeats(criterion(repeats=spec), [original, repeat, fixed])
    assert verdict.passed and "seq 2 repeats seq 1" in verdict.observed


def processor(seq: int, source: str, gateway: str, value: float, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "equipment_id": "CP-1", "parameter": "temperature", "kind": "measurement", "value": value,
            "source_time": source, "gateway_time": gateway, **fields}


def set_back(sample_again: bool) -> list[dict[str, Any]]:
    """Device time 5 min ahead, then back in step; with ``sample_again`` the first sample comes again."""
    journal = [processor(1, "2026-11-22T09:05:00Z", "2026-11-22T09:00:00Z", 37.0),
               processor(2, "2026-11-22T09:05:01Z", "2026-11-22T09:00:01Z", 37.1),
               processor(3, "2026-11-22T09:05:02Z", "2026-11-22T09:00:02Z", 37.2),
               processor(4, "2026-11-22T09:00:03Z", "2026-11-22T09:00:03Z", 37.3)]
    if sample_again:
        journal.append(processor(5, "2026-11-22T09:05:00Z", "2026-11-22T09:00:04Z", 37.0))
    return journal


def test_a_device_clock_set_back_passes_only_where_allowed_and_never_with_a_sample_twice() -> None:
    spec = {"equipment": "CP-1", "offset_min_s": 298, "offset_max_s": 302, "min_count": 3}
    strict = clock(criterion(clock=spec), set_back(False))
    assert not strict.passed and "device time backwards at seqs 4" in strict.observed
    allowed = clock(criterion(clock={**spec, "allow_device_time_back": True}), set_back(False))
    assert allowed.passed, allowed.line()
    twice = clock(criterion(clock={**spec, "allow_device_time_back": True}), set_back(True))
    assert not twice.passed and "device sample seen again at seqs 5" in twice.observed


def daq(offsets: list[float]) -> list[dict[str, Any]]:
    """SCPI readings a second apart, each with the offset of the last clock comparison (no device time)."""
    return [{"seq": i + 1, "equipment_id": "LN2-1", "parameter": "probe_101_temperature", "kind": "measurement",
             "value": -190.0, "gateway_time": f"2026-11-22T09:00:{i:02d}Z", "clock_offset_s": o}
            for i, o in enumerate(offsets)]


def test_an_offset_that_jumps_an_hour_at_the_dst_change_fails_the_steadiness_check() -> None:
    # the device clock stands at 2025-03-30T00:59:57Z at the first reading: three seconds before the change
    offset = -52_041_603.0
    spec = {"equipment": "LN2-1", "max_spread_s": 2, "spans": "2025-03-30T01:00:00Z"}
    steady = clock_offset(criterion(clock_offset=spec), daq([offset, offset, offset, offset + 0.4, offset + 0.8]))
    assert steady.passed, steady.line()
    assert "3 comparison(s), 1 before and 2 after 2025-03-30T01:00:00Z" in steady.observed
    jumped = clock_offset(criterion(clock_offset=spec), daq([offset, offset, offset, offset + 3600.4]))
    assert not jumped.passed and "spread 3600.400 s" in jumped.observed
    before_only = clock_offset(criterion(clock_offset=spec), daq([offset, offset]))
    assert not before_only.passed and "1 before and 0 after" in before_only.observed


def test_a_clock_offset_window_counts_only_between_its_bounds_and_needs_them() -> None:
    journal = [processor(1, "2026-11-22T09:00:00Z", "2026-11-22T09:00:00Z", 37.0, clock_offset_s=0.1),
               {"seq": 2, "equipment_id": "CP-1", "parameter": "clock_drift", "kind": "alarm", "value": "ahead"},
               processor(3, "2026-11-22T09:05:01Z", "2026-11-22T09:00:01Z", 37.1, clock_offset_s=300.0),
               {"seq": 4, "equipment_id": "CP-1", "parameter": "clock_drift", "kind": "alarm", "value": "normal"},
               processor(5, "2026-11-22T09:05:02Z", "2026-11-22T09:00:02Z", 37.2, clock_offset_s=300.0)]
    ahead = {"equipment": "CP-1", "parameter": "clock_drift", "value": "ahead"}
    normal = {"equipment": "CP-1", "parameter": "clock_drift", "value": "normal"}
    spec = {"equipment": "CP-1", "parameter": "temperature", "after": ahead, "before": normal, "min_s": 298,
            "max_s": 302, "min_count": 2}
    between = clock_offset(criterion(clock_offset=spec), journal)
    assert not between.passed and "1 record(s) with an offset (seqs 3..3)" in between.observed
    missing = clock_offset(criterion(clock_offset={**spec, "before": {**normal, "value": "behind"}}), journal)
    assert not missing.passed and "the window is not there" in missing.observed
