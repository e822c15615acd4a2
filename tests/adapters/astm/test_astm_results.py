"""A message as readings by the BacT/ALERT profile: values typed, nothing dropped, lots checked."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.serial.astm.message import Assembler, Message
from adapters.serial.astm.monitor import PositiveCultureMonitor
from adapters.serial.astm.profile import load_profile
from adapters.serial.astm.results import Context, message_batch
from gateway.config import PROJECT_CONFIG_DIR
from gateway.errors import ConfigError
from gateway.records import Kind, Quality
from tests.adapters.astm.worked import BACTALERT_POSITIVE, records_of

PROFILE = load_profile(PROJECT_CONFIG_DIR / "astm-profiles" / "bactalert-lis2a2.yaml")
NOW = datetime(2025, 1, 14, 9, 30, 20, tzinfo=UTC)


def message(texts: list[bytes]) -> Message:
    asm = Assembler()
    out = [asm.add(t, (t,)) for t in texts]
    assert isinstance(out[-1], Message)
    return out[-1]


def ctx(**kw: object) -> Context:
    return Context("BTA-1", "astm+serial:///dev/ttyS0", kw.pop("tz", UTC), **kw)  # type: ignore[arg-type]


def values(texts: list[bytes], **kw: object) -> dict[str, object]:
    batch = message_batch(message(texts), PROFILE, ctx(**kw), NOW)
    return {r.point: r.value for r in batch.readings}


def test_a_positive_bottle() -> None:
    batch = message_batch(message(records_of(BACTALERT_POSITIVE)), PROFILE, ctx(), NOW)
    got = {r.point: r for r in batch.readings}
    assert {p: r.value for p, r in got.items()} == {
        "message": "received",
        "specimen_id": "W123425000001",
        "bottle_type": "iAST",
        "bottle_id": "2347811234",
        "bottle_location": "C4-12",
        "culture_status": "positive",
        "time_to_detection": 54.3,
        "load_time": "2025-01-10T08:23:00+00:00",
        "detection_time": "2025-01-12T14:41:00+00:00",
        "instrument_id": "BTA3D-01",
    }
    assert batch.lot_id == "CT-2025-0042-FP"
    assert got["message"].raw == b"".join(records_of(BACTALERT_POSITIVE))  # every frame, as received
    assert got["time_to_detection"].raw == records_of(BACTALERT_POSITIVE)[4]  # its own record's frames
    assert got["culture_status"].source == "astm+serial:///dev/ttyS0/R1/4"
    assert got["culture_status"].source_time == datetime(2025, 1, 14, 9, 30, 12, tzinfo=UTC)
    assert all(r.quality is Quality.GOOD for r in batch.readings)


def test_device_times_are_read_in_the_device_time_zone() -> None:
    got = values(records_of(BACTALERT_POSITIVE), tz=ZoneInfo("Europe/Paris"))
    assert got["load_time"] == "2025-01-10T08:23:00+01:00"


def swap(texts: list[bytes], old: bytes, new: bytes) -> list[bytes]:
    return [t.replace(old, new) for t in texts]


def test_a_negative_and_an_ongoing_bottle() -> None:
    negative = swap(records_of(BACTALERT_POSITIVE), b"|POSITIVE|||A|", b"|NEGATIVE|||N|")
    negative = [t for t in negative if b"^TTD|" not in t]
    got = values(negative)
    assert got["culture_status"] == "negative" and "time_to_detection" not in got
    ongoing = swap(records_of(BACTALERT_POSITIVE), b"|POSITIVE|||A||F|", b"|ONGOING|||||I|")
    assert values(ongoing)["culture_status"] == "in_progress"


def test_an_unknown_status_and_a_bad_number_are_kept_and_flagged() -> None:
    texts = swap(swap(records_of(BACTALERT_POSITIVE), b"|POSITIVE|", b"|MAYBE|"), b"|54.3|", b"|5x.3|")
    batch = message_batch(message(texts), PROFILE, ctx(), NOW)
    got = {r.point: r for r in batch.readings}
    assert got["culture_status"].value == "MAYBE" and got["culture_status"].quality is Quality.UNCERTAIN
    assert got["time_to_detection"].value is None and got["time_to_detection"].quality is Quality.BAD_DECODING_ERROR
    assert "'5x.3' is not a number" in (got["time_to_detection"].detail or "")


@pytest.mark.parametrize("text", ["1_054.3", "nan", "inf", "-Infinity", "1e999", "٥٤.٣", "54.3h"])
def test_text_that_is_not_a_decimal_is_never_read_as_a_number(text: str) -> None:
    """Found by the fuzzer: Python's float() took '1_054.3' (and nan, inf, non-ASCII digits) as a Good value."""
    texts = swap(records_of(BACTALERT_POSITIVE), b"|54.3|", f"|{text}|".encode())
    asm = Assembler(encoding="utf-8")
    out = [asm.add(t, (t,)) for t in texts]
    assert isinstance(out[-1], Message)
    ttd = next(r for r in message_batch(out[-1], PROFILE, ctx(), NOW).readings if r.point == "time_to_detection")
    assert ttd.value is None and ttd.quality is Quality.BAD_DECODING_ERROR
    assert f"{text!r} is not a number" in (ttd.detail or "")


@pytest.mark.parametrize(("text", "value"), [("54.3", 54.3), (" 54.3 ", 54.3), ("+5.43E1", 54.3), (".5", 0.5)])
def test_a_decimal_is_read_as_written(text: str, value: float) -> None:
    texts = swap(records_of(BACTALERT_POSITIVE), b"|54.3|", f"|{text}|".encode())
    assert values(texts)["time_to_detection"] == value


def test_the_lot_a_result_names_goes_on_its_batch_for_the_core_to_check() -> None:
    batch = message_batch(message(records_of(BACTALERT_POSITIVE)), PROFILE, ctx(), NOW)
    assert batch.lot_id == "CT-2025-0042-FP"
    assert {r.point for r in batch.readings} >= {"message", "culture_status"}  # no lot judgement in the adapter


def test_the_lot_can_come_from_a_specimen_id_pattern() -> None:
    texts = swap(records_of(BACTALERT_POSITIVE), b"W123425000001^CT-2025-0042-FP", b"LOT77-S03^")
    batch = message_batch(message(texts), PROFILE, ctx(lot_pattern=re.compile(r"^(?P<lot>LOT\d+)-")), NOW)
    assert batch.lot_id == "LOT77"


def test_an_unlisted_version_and_an_abnormal_termination_are_noted() -> None:
    texts = swap(swap(records_of(BACTALERT_POSITIVE), b"LIS2-A2", b"LIS9"), b"L|1|N", b"L|1|T")
    batch = message_batch(message(texts), PROFILE, ctx(), NOW)
    msg = batch.readings[0]
    assert msg.quality is Quality.UNCERTAIN
    assert "version 'LIS9'" in (msg.detail or "") and "sender aborted" in (msg.detail or "")


@pytest.mark.parametrize("version", ["LIS2-A", "1394-97", "E 1394-97", "LIS2-A2"])
def test_the_version_strings_found_in_the_field_are_accepted(version: str) -> None:
    texts = swap(records_of(BACTALERT_POSITIVE), b"LIS2-A2", version.encode())
    assert message_batch(message(texts), PROFILE, ctx(), NOW).readings[0].quality is Quality.GOOD


def test_the_positive_monitor_alarms_once_per_bottle() -> None:
    monitor = PositiveCultureMonitor(PROFILE)
    rows = [
        {"parameter": "bottle_id", "kind": Kind.STATE, "value": "B1", "source": "s", "gateway_time": NOW},
        {"parameter": "time_to_detection", "kind": Kind.MEASUREMENT, "value": 54.3, "unit": "h", "source": "s",
         "gateway_time": NOW},
        {"parameter": "culture_status", "kind": Kind.STATE, "value": "positive", "source": "s", "gateway_time": NOW},
    ]
    (alarm,) = monitor.observe(rows)
    assert alarm["kind"] is Kind.ALARM and alarm["parameter"] == "culture_positive"
    assert alarm["detail"].startswith("HIGH priority") and "time_to_detection=54.3 h" in alarm["detail"]
    assert monitor.observe(rows) == []  # the same bottle reported again
    negative = [dict(r, value="negative") if r["parameter"] == "culture_status" else r for r in rows]
    assert monitor.observe(negative) == []


def test_a_profile_error_is_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\npoints:\n  message: {parameter: m, kind: event}\n  x: {parameter: x, select: {record: O}}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_profile(bad)
    text = str(err.value)
    assert f"{bad}:4: points.x.select.field: field required" in text
