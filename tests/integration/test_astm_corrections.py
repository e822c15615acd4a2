"""Corrected and repeated ASTM results against the BacT/ALERT simulator, through the real supervisor, pipeline
and journal: a correction (R.9 = C) is a new record linked to the version it replaces, which stays as it
was; a correction of a version this gateway never received is kept and says so; a message sent again is
recognised as the same version; the header's time gives each record the device clock's offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from test_astm_support import Gateway, bactalert, equipment

from gateway.journal import verify
from gateway.records import ProcessRecord


def raw_sha256(gw: Gateway, record: ProcessRecord) -> str:
    """The raw_sha256 member of a record's hashed payload, as a receiver gets it."""
    with gw.journal.reader() as reader:
        for seq, payload, _, _ in reader.rows(record.seq - 1):
            assert seq == record.seq
            return str(orjson.loads(payload)["raw_sha256"])
    raise AssertionError(f"seq {record.seq} not found")


def results(gw: Gateway, parameter: str) -> list[ProcessRecord]:
    return [r for r, _ in gw.of(parameter)]


async def test_a_corrected_result_is_a_new_record_linked_to_the_version_it_replaces(tmp_path: Path) -> None:
    sim = bactalert([{"lot": "LOT-A", "ttd_h": 1.0, "bottle_id": "B-1", "specimen_id": "S-1"}])
    async with sim, Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: results(gw, "time_to_detection"), "the positive result")
        (before,) = results(gw, "time_to_detection")
        sim.inject("correct_result", bottle=1, ttd_h=3.0)
        await gw.until(lambda: len(results(gw, "time_to_detection")) == 2, "the corrected result")
        await gw.until(lambda: sim.state().pending == 0, "every message delivered")
    original, corrected = results(gw, "time_to_detection")
    assert original == before, "the original is untouched"
    assert (original.value, original.corrects, original.detail) == (1.0, None, None)
    assert corrected.value == 3.0 and corrected.seq > original.seq
    assert corrected.result_key == original.result_key == "BTA-1/S-1/B-1/TTD"
    assert corrected.corrects == raw_sha256(gw, original)
    assert corrected.detail is not None and corrected.detail.endswith("was '1.0'")
    in_progress, positive, corrected_status = results(gw, "culture_status")
    assert in_progress.value == "in_progress" and positive.value == corrected_status.value == "positive"
    assert {r.result_key for r in (in_progress, positive, corrected_status)} == {"BTA-1/S-1/B-1/STATUS"}
    assert (in_progress.corrects, positive.corrects) == (None, None)
    assert corrected_status.corrects == raw_sha256(gw, positive), "it corrects the latest version, the positive"
    assert len(gw.of("culture_positive")) == 1, "the corrected positive does not alarm again"
    assert all(r.result_key is None for r in results(gw, "specimen_id") + results(gw, "astm_message"))
    assert verify(tmp_path / "journal.sqlite").ok


async def test_a_correction_of_a_version_this_gateway_never_received_is_kept_and_says_so(tmp_path: Path) -> None:
    async with bactalert([{"lot": "LOT-A", "ttd_h": 1.0}], report_loads=False) as sim:
        async with Gateway(sim, equipment(sim), tmp_path) as first:
            await first.until(lambda: results(first, "time_to_detection"), "the positive result")
            await first.until(lambda: len(sim.state().sent) == 1, "the positive counted as delivered")
        sim.inject("correct_result", ttd_h=3.0)
        # the gateway restarted between the result and its correction: a new entry remembers nothing
        async with Gateway(sim, equipment(sim), tmp_path) as second:
            await second.until(lambda: len(results(second, "time_to_detection")) == 2, "the correction")
    original, corrected = results(second, "time_to_detection")
    assert (corrected.value, corrected.corrects) == (3.0, "unknown")
    assert corrected.result_key == original.result_key is not None
    assert corrected.detail == ("corrected result (R.9 = C) of a version this gateway has not received since it "
                                "started (corrects: unknown)")
    assert original.value == 1.0 and original.corrects is None
    assert verify(tmp_path / "journal.sqlite").ok


async def test_an_identical_message_sent_again_is_the_same_version_not_a_new_one(tmp_path: Path) -> None:
    async with bactalert([{"lot": "LOT-A", "ttd_h": 1.0}], report_loads=False) as sim, \
            Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: results(gw, "time_to_detection"), "the positive result")
        sim.inject("resend")
        await gw.until(lambda: len(results(gw, "time_to_detection")) == 2, "the result sent again")
        await gw.until(lambda: len(sim.state().sent) == 2, "both copies counted as delivered")
    assert sim.state().sent[-1].endswith(":resend")
    (_, first_raw), (_, second_raw) = gw.of("astm_message", "received")
    assert first_raw == second_raw, "the instrument sent the same bytes"
    for parameter in ("culture_status", "time_to_detection"):
        first, again = results(gw, parameter)
        assert first.value == again.value and first.result_key == again.result_key is not None
        assert raw_sha256(gw, first) == raw_sha256(gw, again), "one version: same key, same raw_sha256"
        assert first.corrects is None and again.corrects is None, "a repeat is not a correction"
        assert (again.detail or "").startswith("sent again: the same result as received ")
    assert len(gw.of("culture_positive")) == 1
    assert verify(tmp_path / "journal.sqlite").ok


async def test_clock_offset_is_filled_from_the_message_header(tmp_path: Path) -> None:
    ahead = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    async with bactalert([{"lot": "LOT-A"}], start=ahead.isoformat()) as sim, \
            Gateway(sim, equipment(sim), tmp_path) as gw:
        await gw.until(lambda: gw.of("astm_message", "received"), "the load message")
    (message, _), = gw.of("astm_message", "received")
    assert message.source_time is not None and message.clock_offset_s is not None
    of_message = [r for r, _ in gw.records() if r.source_time == message.source_time]
    assert {r.parameter for r in of_message} >= {"astm_message", "specimen_id", "culture_status"}
    assert {r.clock_offset_s for r in of_message} == {message.clock_offset_s}, "every record of the message"
    day = timedelta(days=1).total_seconds()
    assert day - 60 < message.clock_offset_s < day + 60, "the instrument's clock is a day ahead"
    assert all(r.clock_offset_s is None for r, _ in gw.of("astm_link")), "link events carry no device time"
