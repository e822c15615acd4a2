"""Journal v2: retention pruning that keeps the chain checkable, dead letters holding retention, the
audit trail's own chain, the free-disk floor, the quota alarm, and the upgrade of a version 1 file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import JournalConfig
from gateway.errors import JournalError
from gateway.housekeeping import Housekeeper
from gateway.journal import AuditEntry, Journal, JournalReader, verify
from gateway.records import utc_now
from tests.journal.conftest import MakeDraft, Tamper

GW = "suite-3"


async def fill(journal: Journal, make_draft: MakeDraft, n: int, start: int = 0, **overrides: object) -> None:
    await journal.append([(make_draft(i, **overrides), None) for i in range(start, start + n)])


async def test_prune_removes_only_old_forwarded_records_and_verify_still_passes(
    journal_path: Path, make_draft: MakeDraft
) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 10)  # gateway_time in 2025: old
        await fill(journal, make_draft, 5, start=10, gateway_time=utc_now())  # new
        head = (journal.last_seq, journal.head_hash)
        assert await journal.prune(through_seq=4, older_than=utc_now() - timedelta(days=1)) == 4
        assert await journal.prune(through_seq=15, older_than=utc_now() - timedelta(days=1)) == 6  # not the new ones
        assert await journal.prune(through_seq=15, older_than=utc_now() + timedelta(days=1)) == 4  # never the last
        await fill(journal, make_draft, 1, start=15)
        assert journal.last_seq == 16  # numbering continues after a prune
    report = verify(journal_path)
    assert report.ok, report.reason
    assert report.records_checked == 2 and report.last_seq == 16
    assert any("pruned under retention" in n for n in report.notes)
    assert verify(journal_path, anchor=head).ok  # the head noted before pruning is still there
    with JournalReader(journal_path) as reader:
        assert reader.first_seq() == 15 and [r.seq for r in reader.read()] == [15, 16]
        actions = [(e["action"], e["detail"]["first_seq"], e["detail"]["last_seq"]) for e in reader.audit()]
    assert actions == [("journal.pruned", 1, 4), ("journal.pruned", 5, 10), ("journal.pruned", 11, 14)]


async def test_an_edit_after_a_prune_is_still_caught(journal_path: Path, make_draft: MakeDraft, tamper: Tamper) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 10)
        await journal.prune(through_seq=5, older_than=utc_now())
    tamper(journal_path, "UPDATE meta SET value = '0000' WHERE key = 'pruned_through_hash'")
    report = verify(journal_path)
    assert not report.ok and report.first_bad_seq == 6 and "prev_hash" in (report.reason or "")


async def test_a_dead_letter_holds_retention_until_someone_decides(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 10)
        await journal.settle("sink:mes", 10, rejected=[(4, "unknown lot")])
        assert await journal.prune(through_seq=10, older_than=utc_now()) == 3
    with JournalReader(journal_path) as reader:
        assert reader.first_seq() == 4
        assert [(d.seq, d.reason) for d in reader.dead_letters()] == [(4, "unknown lot")]


async def test_a_settle_is_one_transaction_with_its_dead_letters(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 3)
        with pytest.raises(ValueError, match="beyond the last committed record"):
            await journal.settle("sink:mes", 9, rejected=[(2, "bad")])
    with JournalReader(journal_path) as reader:
        assert reader.dead_letters() == [] and reader.audit() == [] and reader.get_cursor("sink:mes") == 0


async def test_an_edited_audit_entry_breaks_verify(journal_path: Path, make_draft: MakeDraft, tamper: Tamper) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 2)
        await journal.audit(AuditEntry("config.changed", "site.yaml", "new counter"), AuditEntry("x", "y"))
    assert verify(journal_path).ok
    tamper(journal_path, "UPDATE audit SET payload = replace(payload, 'new counter', 'no counter') WHERE id = 1")
    report = verify(journal_path)
    assert not report.ok and "audit entry 1" in (report.reason or "") and "edited" in (report.reason or "")
    tamper(journal_path, "DELETE FROM audit WHERE id = 1")
    assert "audit entry 1 missing" in (verify(journal_path).reason or "")


async def test_below_the_free_disk_floor_new_records_are_refused_loudly(
    journal_path: Path, make_draft: MakeDraft
) -> None:
    async with Journal.open(journal_path, gateway_id=GW, min_free_bytes=10**18) as journal:
        with pytest.raises(JournalError, match=r"below the journal's floor .* refusing new records"):
            await fill(journal, make_draft, 1)
        assert journal.last_seq == 0


async def test_the_quota_alarm_is_a_record_on_each_transition(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 50)
        used, _ = journal.storage()
        keeper = Housekeeper(journal, JournalConfig(quota_mb=used / 2e6), [], "ab" * 32)
        await keeper.run_once()
        await keeper.run_once()  # still over: no second alarm
        keeper.config = JournalConfig(quota_mb=1e6)
        await keeper.run_once()
    with JournalReader(journal_path) as reader:
        alarms = [r for r in reader.read() if r.parameter == "journal_storage"]
    assert [(a.kind, a.value, a.equipment_id) for a in alarms] == [("alarm", "over_quota", GW), ("alarm", "normal", GW)]
    assert "quota" in (alarms[0].detail or "")


async def test_housekeeping_prunes_only_what_every_sink_has_taken(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 20)
        await journal.set_cursor("sink:mes", 15)
        await journal.set_cursor("sink:broker", 8)
        keeper = Housekeeper(journal, JournalConfig(retention_days=1), ["mes", "broker"], "ab" * 32)
        assert await keeper.prune() == 8
        await journal.set_cursor("sink:broker", 20)
        assert await keeper.prune() == 7  # up to the slower cursor of the two, mes at 15
    assert verify(journal_path).ok


async def test_a_version_1_journal_is_upgraded_on_open(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 3)
    with closing(sqlite3.connect(journal_path, isolation_level=None)) as db:  # make it look like version 1
        for statement in ("DROP TABLE dead_letters", "DROP TABLE audit", "DROP TABLE resolutions",
                          "DROP INDEX records_event", "ALTER TABLE records DROP COLUMN kind"):
            db.execute(statement)
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with JournalReader(journal_path) as reader:  # a reader copes with the old layout
        assert reader.dead_letters() == [] and reader.audit() == [] and reader.meta["schema_version"] == "1"
    assert verify(journal_path).ok
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await journal.settle("sink:mes", 3, rejected=[(1, "bad")])
    with JournalReader(journal_path) as reader:
        assert reader.meta["schema_version"] == "4" and len(reader.dead_letters()) == 1


async def test_a_version_3_journal_gets_its_events_indexed_on_open(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 4)
        await journal.append([(make_draft(9, kind="event", parameter="lot_binding"), None),
                              (make_draft(10, kind="alarm", parameter="particles_0_5um"), None)])
    with closing(sqlite3.connect(journal_path, isolation_level=None)) as db:  # make it look like version 3
        for statement in ("DROP INDEX records_event", "ALTER TABLE records DROP COLUMN kind",
                          "CREATE INDEX records_parameter ON records (parameter, seq)",
                          "UPDATE meta SET value = '3' WHERE key = 'schema_version'"):
            db.execute(statement)
    with JournalReader(journal_path) as reader:  # a reader of the old layout finds events without the column
        assert [r.seq for r in reader.events_of("lot_binding")] == [5]
    async with Journal.open(journal_path, gateway_id=GW):
        pass
    with closing(sqlite3.connect(journal_path)) as db:
        kinds = db.execute("SELECT seq, kind FROM records ORDER BY seq").fetchall()
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert kinds == [(1, None), (2, None), (3, None), (4, None), (5, "event"), (6, "alarm")]  # only events rewritten
    assert "records_event" in indexes and "records_parameter" not in indexes
    with JournalReader(journal_path) as reader:
        assert reader.meta["schema_version"] == "4"
        assert [r.seq for r in reader.events_of("lot_binding")] == [5]
        assert [r.seq for r in reader.events_of("particles_0_5um")] == [6]  # the readings are not in the index
        assert [r.seq for r in reader.of_parameter("particles_0_5um")] == [1, 2, 3, 4, 6]
    assert verify(journal_path).ok


async def test_lookups_of_events_use_the_index(journal_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 3)
    with closing(sqlite3.connect(journal_path)) as db:
        from gateway.journal._schema import EVENTS_CONDITION

        plan = db.execute(f"EXPLAIN QUERY PLAN SELECT seq FROM records WHERE {EVENTS_CONDITION}"
                          " AND parameter = ? AND seq > ? ORDER BY seq", ("lot_binding", 0)).fetchall()
    assert "records_event" in " ".join(str(row[-1]) for row in plan)
