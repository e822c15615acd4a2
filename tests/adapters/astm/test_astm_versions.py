"""Versions of one result: every R reading carries its result key, a correction (R.9 = C) the raw_sha256 of
the version it replaces (or 'unknown'), a result sent again is recognised; H.14 gives the clock offset."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.serial.astm.message import Assembler, Message
from adapters.serial.astm.profile import AstmProfile, load_profile
from adapters.serial.astm.results import Context, message_batch
from adapters.serial.astm.versions import ResultVersions, result_key
from gateway.config import PROJECT_CONFIG_DIR
from gateway.records import RawReading, ReadingBatch
from tests.adapters.astm.worked import BACTALERT_POSITIVE, records_of

PROFILE = load_profile(PROJECT_CONFIG_DIR / "astm-profiles" / "bactalert-lis2a2.yaml")
NOW = datetime(2025, 1, 14, 9, 30, 20, tzinfo=UTC)
ORIGINAL = records_of(BACTALERT_POSITIVE)
STATUS_KEY = "BTA-1/W123425000001/2347811234/STATUS"
TTD_KEY = "BTA-1/W123425000001/2347811234/TTD"
#: The instrument corrects the time to detection (and so the detection time in R.13) of the same bottle.
CORRECTED = [
    t.replace(b"|A||F||AUTO|", b"|A||C||AUTO|").replace(b"|54.3|h||||F|", b"|55.0|h||||C|")
    .replace(b"20250112144100", b"20250112150100").replace(b"20250114093012", b"20250115100000")
    for t in ORIGINAL
]


def batch(texts: list[bytes], versions: ResultVersions, tz: object = UTC, **kw: object) -> ReadingBatch:
    asm = Assembler()
    out = [asm.add(t, (t,)) for t in texts]
    assert isinstance(out[-1], Message)
    ctx = Context("BTA-1", "astm+serial:///dev/ttyS0", tz)  # type: ignore[arg-type]
    return message_batch(out[-1], PROFILE, ctx, kw.pop("now", NOW), versions, **kw)  # type: ignore[arg-type]


def by_point(b: ReadingBatch) -> dict[str, RawReading]:
    return {r.point: r for r in b.readings}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_each_result_reading_carries_its_result_key_and_nothing_else_does() -> None:
    got = by_point(batch(ORIGINAL, ResultVersions()))
    keyed = {p: r.result_key for p, r in got.items() if r.result_key is not None}
    assert keyed == {"culture_status": STATUS_KEY, "load_time": STATUS_KEY, "detection_time": STATUS_KEY,
                     "instrument_id": STATUS_KEY, "time_to_detection": TTD_KEY}
    assert all(r.corrects is None and r.detail is None for p, r in got.items() if p != "message")


def test_a_correction_links_to_the_version_it_replaces_and_says_what_was_there() -> None:
    versions = ResultVersions()
    original = by_point(batch(ORIGINAL, versions))
    fixed = by_point(batch(CORRECTED, versions, now=NOW + timedelta(hours=1)))
    ttd = fixed["time_to_detection"]
    assert ttd.value == 55.0 and ttd.result_key == TTD_KEY
    assert ttd.corrects == sha(original["time_to_detection"].raw or b"") == sha(ORIGINAL[4])
    assert ttd.detail == ("corrected result (R.9 = C) replacing the version received 2025-01-14T09:30:20.000Z: "
                          "was '54.3'")
    status = fixed["culture_status"]
    assert status.corrects == sha(ORIGINAL[3]) and status.value == "positive"
    assert (status.detail or "").endswith("this item unchanged")
    assert "was '20250112144100'" in (fixed["detection_time"].detail or "")
    assert fixed["specimen_id"].corrects is None, "the sample's own items are not results"
    assert original["time_to_detection"].value == 54.3 and original["time_to_detection"].corrects is None


def test_a_correction_of_a_version_never_received_is_kept_and_says_so() -> None:
    got = by_point(batch(CORRECTED, ResultVersions()))
    ttd = got["time_to_detection"]
    assert ttd.value == 55.0 and ttd.result_key == TTD_KEY and ttd.corrects == "unknown"
    assert ttd.detail == ("corrected result (R.9 = C) of a version this gateway has not received since it "
                          "started (corrects: unknown)")


def test_a_result_sent_again_is_recognised_and_a_correction_sent_again_keeps_its_link() -> None:
    versions = ResultVersions()
    batch(ORIGINAL, versions)
    again = by_point(batch(ORIGINAL, versions, now=NOW + timedelta(minutes=5)))["culture_status"]
    assert again.corrects is None and again.result_key == STATUS_KEY
    assert again.detail == "sent again: the same result as received 2025-01-14T09:30:20.000Z"
    first = by_point(batch(CORRECTED, versions, now=NOW + timedelta(hours=1)))["time_to_detection"]
    second = by_point(batch(CORRECTED, versions, now=NOW + timedelta(hours=2)))["time_to_detection"]
    assert second.corrects == first.corrects == sha(ORIGINAL[4])
    assert (second.detail or "").startswith("sent again: the same corrected result as received 2025-01-14T10:30")
    assert len(versions) == 2


def test_a_new_status_is_a_new_version_not_a_correction() -> None:
    versions = ResultVersions()
    ongoing = [t.replace(b"|POSITIVE|||A||F|", b"|ONGOING|||||I|") for t in ORIGINAL if b"^TTD|" not in t]
    batch(ongoing, versions)
    got = by_point(batch(ORIGINAL, versions))["culture_status"]
    assert got.value == "positive" and got.result_key == STATUS_KEY and got.corrects is None and got.detail is None


def test_a_correction_naming_no_sample_cannot_be_linked_and_says_so() -> None:
    anonymous = [t.replace(b"W123425000001^", b"^") for t in CORRECTED if not t.startswith(b"C|")]
    ttd = by_point(batch(anonymous, ResultVersions()))["time_to_detection"]
    assert ttd.result_key is None and ttd.corrects == "unknown"
    assert "naming no specimen or bottle" in (ttd.detail or "")


def test_result_key_parts_are_escaped() -> None:
    assert result_key("BTA-1", ["S/1", ""], "TTD") == "BTA-1/S%2F1//TTD"
    assert result_key("BTA-1", ["", ""], "TTD") is None


def test_the_clock_offset_is_the_header_time_against_the_header_arrival() -> None:
    assert batch(ORIGINAL, ResultVersions()).clock_offset_s == -8.0  # H.14 09:30:12, received 09:30:20
    arrived = NOW - timedelta(seconds=5)
    assert batch(ORIGINAL, ResultVersions(), header_at=arrived).clock_offset_s == -3.0
    paris = batch(ORIGINAL, ResultVersions(), tz=ZoneInfo("Europe/Paris"))
    assert paris.clock_offset_s == -3608.0  # 09:30:12 in Paris is 08:30:12 UTC
    minutes = [t.replace(b"|LIS2-A2|20250114093012", b"|LIS2-A2|202501140930") for t in ORIGINAL]
    assert batch(minutes, ResultVersions()).clock_offset_s is None, "a time without seconds is too coarse"
    no_time = [t.replace(b"|LIS2-A2|20250114093012", b"|LIS2-A2|") for t in ORIGINAL]
    assert batch(no_time, ResultVersions()).clock_offset_s is None


def test_a_profile_chooses_the_points_naming_the_sample_and_the_correction_statuses() -> None:
    data = PROFILE.model_dump(exclude_unset=True)
    specimen_only = AstmProfile.model_validate({**data, "result_key_points": ["specimen_id"]})
    texts = [t.replace(b"|A||C||AUTO|", b"|A||X||AUTO|") for t in CORRECTED]
    custom = AstmProfile.model_validate({**data, "correction_statuses": ["X"]})
    ctx = Context("BTA-1", "astm+serial:///dev/ttyS0", UTC)
    asm = Assembler()
    msg = [asm.add(t, (t,)) for t in texts][-1]
    assert isinstance(msg, Message)
    got = {r.point: r for r in message_batch(msg, specimen_only, ctx, NOW).readings}
    assert got["culture_status"].result_key == "BTA-1/W123425000001/STATUS"
    assert got["culture_status"].corrects is None, "X is not a correction status by default"
    got = {r.point: r for r in message_batch(msg, custom, ctx, NOW).readings}
    assert got["culture_status"].corrects == "unknown"
    with pytest.raises(ValueError, match="does not define: nope"):
        AstmProfile.model_validate({**data, "result_key_points": ["nope"]})
