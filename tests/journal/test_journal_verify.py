"""verify names the first bad record and says what is wrong, for each way a journal can be altered."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.errors import IntegrityError, JournalError
from gateway.journal import GENESIS_HASH, Journal, verify

RECORDS = 100


@pytest.fixture
async def written(journal_path: Path, make_draft) -> Path:
    """A journal of 100 records, every third with raw bytes, and a sink cursor at 60."""
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        for start in range(0, RECORDS, 10):
            await journal.append(
                [(make_draft(i), f"frame {i}".encode() if i % 3 == 0 else None) for i in range(start, start + 10)]
            )
        await journal.set_cursor("mes", 60)
    return journal_path


def _sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _bad(path: Path, **kwargs: object) -> tuple[int | None, str]:
    report = verify(path, **kwargs)  # type: ignore[arg-type]
    assert not report.ok
    assert report.reason is not None and "\n" not in report.reason
    assert report.records_checked == report.last_seq == (report.first_bad_seq or 0) - 1
    return report.first_bad_seq, report.reason


def test_an_intact_journal_verifies_and_reports_its_head(written: Path, stored_row) -> None:
    report = verify(written)
    assert report.ok and report.first_bad_seq is None and report.reason is None
    assert report.records_checked == report.last_seq == RECORDS
    assert report.head_hash == stored_row(written, RECORDS)[2]
    assert report.gateway_id == "gw-1"
    assert any("tail" in note for note in report.notes)
    assert f"head seq {RECORDS} hash {report.head_hash}" in report.summary()
    report.raise_for_status()
    assert verify(written, anchor=(RECORDS, report.head_hash)).ok


async def test_an_empty_journal_verifies(journal_path: Path) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1"):
        pass
    report = verify(journal_path)
    assert report.ok and report.last_seq == 0 and report.head_hash == GENESIS_HASH


def test_an_edited_value_is_named(written: Path, tamper, stored_row) -> None:
    payload, _, _ = stored_row(written, 41)
    assert b'"value":40.0' in payload
    edited = payload.replace(b'"value":40.0', b'"value":4.0')
    tamper(written, ("UPDATE records SET payload = ? WHERE seq = 41", (edited,)))
    assert _bad(written) == (41, "seq 41: hash does not match its content (record edited)")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(written: Path, tamper, stored_row) -> None:
    payload, _, _ = stored_row(written, 41)
    edited = payload.replace(b'"value":40.0', b'"value":4.0')
    tamper(written, ("UPDATE records SET payload = ?, hash = ? WHERE seq = 41", (edited, _sha(edited))))
    assert _bad(written) == (
        42, "seq 42: prev_hash does not match seq 41 (a record was altered, reordered or inserted)"
    )


def test_an_edit_through_sql_text_functions_is_named(written: Path, tamper) -> None:
    sql = """UPDATE records SET payload = replace(payload, '"value":40.0', '"value":4.0') WHERE seq = 41"""
    tamper(written, sql)
    assert _bad(written)[0] == 41


def test_a_deleted_record_is_named(written: Path, tamper) -> None:
    tamper(written, "DELETE FROM records WHERE seq = 41")
    assert _bad(written) == (41, "seq 41 missing (40 is followed by 42)")
    tamper(written, "DELETE FROM records WHERE seq IN (42, 43)")
    assert _bad(written) == (41, "seqs 41 to 43 missing (40 is followed by 44)")


def test_a_deleted_first_record_is_named(written: Path, tamper) -> None:
    tamper(written, "DELETE FROM records WHERE seq = 1")
    assert _bad(written) == (1, "seq 1 missing (the journal starts at seq 2)")


def test_swapped_records_are_named(written: Path, tamper) -> None:
    tamper(
        written,
        "UPDATE records SET seq = -1 WHERE seq = 41",
        "UPDATE records SET seq = 41 WHERE seq = 42",
        "UPDATE records SET seq = 42 WHERE seq = -1",
    )
    assert _bad(written) == (41, "seq 41: the record stored here is seq 42 (records reordered or moved)")


def test_edited_raw_bytes_are_named(written: Path, tamper) -> None:
    tamper(written, "UPDATE records SET raw = X'00' WHERE seq = 46")
    assert _bad(written) == (46, "seq 46: raw bytes do not match the digest in the record (raw edited)")


def test_removed_or_added_raw_bytes_are_named(written: Path, tamper) -> None:
    tamper(written, "UPDATE records SET raw = NULL WHERE seq = 46")
    assert _bad(written) == (46, "seq 46: raw bytes do not match the digest in the record (raw removed)")
    tamper(written, "UPDATE records SET raw = X'00' WHERE seq = 2")
    assert _bad(written) == (2, "seq 2: raw bytes do not match the digest in the record (raw added)")


def test_an_edited_index_column_is_named(written: Path, tamper) -> None:
    tamper(written, "UPDATE records SET equipment_id = 'pc-9' WHERE seq = 50")
    first_bad, reason = _bad(written)
    assert first_bad == 50 and reason.startswith("seq 50: column equipment_id is 'pc-9'")


def test_an_event_hidden_from_the_index_by_parameter_is_named(written: Path, tamper) -> None:
    tamper(written, "UPDATE records SET kind = 'alarm' WHERE seq = 12")  # a reading shown as an alarm
    assert _bad(written) == (12, "seq 12: column kind is 'alarm' but the record says 'measurement' (row edited)")
    tamper(written, "UPDATE records SET kind = 'measurement' WHERE seq = 12")
    assert verify(written).ok


async def test_an_event_whose_kind_was_blanked_is_named(journal_path: Path, make_draft, tamper) -> None:
    """A NULL kind is how older rows say "not an event"; on an event it would hide it from lookups by parameter."""
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(0), None), (make_draft(1, kind="event", parameter="lot_binding"), None)])
    tamper(journal_path, "UPDATE records SET kind = NULL WHERE seq = 2")
    assert _bad(journal_path) == (2, "seq 2: column kind is None but the record says 'event' (row edited)")


def test_a_payload_from_another_gateway_is_named(written: Path, tamper, stored_row) -> None:
    payload, _, _ = stored_row(written, 30)
    forged = payload.replace(b'"gateway_id":"gw-1"', b'"gateway_id":"gw-2"')
    tamper(written, ("UPDATE records SET payload = ?, hash = ? WHERE seq = 30", (forged, _sha(forged))))
    assert _bad(written) == (30, "seq 30: the record is of gateway 'gw-2', the journal of 'gw-1'")


def test_an_unparseable_payload_is_named(written: Path, tamper) -> None:
    junk = b"{not json"
    tamper(written, ("UPDATE records SET payload = ?, hash = ? WHERE seq = 7", (junk, _sha(junk))))
    first_bad, reason = _bad(written)
    assert first_bad == 7 and reason.startswith("seq 7: payload is not JSON") and "unparseable" in reason


def test_a_cut_tail_is_a_valid_chain_unless_an_anchor_or_a_cursor_says_otherwise(
    written: Path, tamper, stored_row
) -> None:
    head = verify(written)
    tamper(written, "DELETE FROM records WHERE seq > 90")
    shorter = verify(written)
    assert shorter.ok and shorter.last_seq == 90 and shorter.head_hash == stored_row(written, 90)[2]
    assert _bad(written, anchor=(RECORDS, head.head_hash)) == (
        91, "the journal ends at seq 90 but seq 100 was recorded: records after 90 are missing"
    )
    assert _bad(written, anchor=(50, "f" * 64))[0] == 50
    tamper(written, "DELETE FROM records WHERE seq > 55")
    assert _bad(written) == (
        56, "sink cursor 'mes' is at seq 60 but the journal ends at seq 55: records after 55 are missing"
    )


def test_raise_for_status_raises_integrity_error_with_the_seq(written: Path, tamper) -> None:
    tamper(written, "DELETE FROM records WHERE seq = 12")
    with pytest.raises(IntegrityError, match="BROKEN at seq 12: seq 12 missing") as caught:
        verify(written).raise_for_status()
    assert caught.value.seq == 12


def test_verify_needs_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal here"):
        verify(tmp_path / "missing.db")


async def test_verify_streams_a_larger_journal(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        for start in range(0, 20_000, 2_000):
            await journal.append([(make_draft(i), None) for i in range(start, start + 2_000)])
    report = verify(journal_path)
    assert report.ok and report.records_checked == 20_000
