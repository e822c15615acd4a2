"""Backup while the gateway writes, and restore with the gateway stopped: consistent, verified, audited, and
never losing the journal it replaces."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway import cli
from gateway.errors import JournalError
from gateway.journal import AuditEntry, Journal, JournalReader, backup, restore, verify
from tests.journal.conftest import MakeDraft, StoredRow, Tamper

GW = "suite-3"


def _exists(path: str | Path) -> bool:
    return Path(path).exists()


def _leftovers(folder: Path) -> list[str]:
    """Files a refused restore must not leave behind."""
    return sorted(p.name for p in folder.iterdir() if "replaced" in p.name or "restoring" in p.name)


async def fill(journal: Journal, make_draft: MakeDraft, n: int, start: int = 0) -> None:
    await journal.append([(make_draft(i), b"raw-%d" % i) for i in range(start, start + n)])


async def test_backup_while_a_writer_appends_is_a_consistent_verified_snapshot(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft, stored_row: StoredRow
) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 50)
        await journal.audit(AuditEntry("test.marker", "before the backups"))
        stop = asyncio.Event()

        async def keep_appending() -> None:
            i = 50
            while not stop.is_set():
                await journal.append([(make_draft(i + k), b"x" * 200) for k in range(20)])
                await journal.set_cursor("mes", journal.last_seq)
                i += 20

        writer = asyncio.create_task(keep_appending())
        reports = []
        try:
            for n in range(4):
                before = journal.last_seq
                reports.append(await asyncio.to_thread(backup, journal_path, tmp_path / f"copy-{n}.sqlite"))
                assert reports[-1].copy_head.last_seq >= before  # a snapshot of now, not of the start
        finally:
            stop.set()
            await writer
        last = journal.last_seq
    assert last > reports[-1].copy_head.last_seq > reports[0].copy_head.last_seq  # the writer really ran
    for report in reports:
        copy = Path(report.copy)
        assert report.ok, report.summary()
        assert report.copy_head == report.source_head and report.gateway_id == GW
        checked = verify(copy)
        assert checked.ok and (checked.last_seq, checked.head_hash) == (
            report.copy_head.last_seq, report.copy_head.head_hash)
        assert stored_row(journal_path, checked.last_seq)[2] == checked.head_hash  # the source's record at that seq
        with JournalReader(copy) as reader:
            assert reader.get_cursor("mes") <= checked.last_seq  # cursors from the same snapshot
            assert reader.audit()[0]["action"] == "test.marker"
        assert not _exists(f"{copy}-wal") and not _exists(f"{copy}.partial")  # one self-contained file
    assert "OK" in reports[0].summary() and str(reports[0].copy_head.last_seq) in reports[0].summary()


async def test_backup_never_overwrites_a_file(journal_path: Path, tmp_path: Path, make_draft: MakeDraft) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 3)
    taken = tmp_path / "taken.sqlite"
    taken.write_bytes(b"someone's file")
    with pytest.raises(JournalError, match="already exists; a backup never overwrites"):
        backup(journal_path, taken)
    assert taken.read_bytes() == b"someone's file"


async def test_backup_of_a_broken_journal_is_kept_but_reported_broken(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft, tamper: Tamper
) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 5)
    tamper(journal_path, "UPDATE records SET raw = X'00' WHERE seq = 3")
    report = backup(journal_path, tmp_path / "copy.sqlite")
    assert not report.ok and report.copy_head == report.source_head  # faithful, so the evidence is kept
    assert "BROKEN at seq 3" in report.summary() and (tmp_path / "copy.sqlite").exists()


async def test_restore_refuses_while_the_gateway_runs(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft
) -> None:
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 5)
        backup(journal_path, tmp_path / "copy.sqlite")
        with pytest.raises(JournalError, match=r"in use by another gateway.*stop it first"):
            restore(journal_path, tmp_path / "copy.sqlite", gateway_id=GW, actor="qa.lee", reason="test", force=True)
        assert list((await journal.append([(make_draft(9), None)])).seqs) == [6]  # untouched
    assert _leftovers(tmp_path) == []


async def test_restore_refuses_another_gateways_backup_and_a_backup_that_does_not_verify(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft, tamper: Tamper
) -> None:
    other = tmp_path / "other.sqlite"
    async with Journal.open(other, gateway_id="suite-9") as journal:
        await fill(journal, make_draft, 3)
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 3)
    with pytest.raises(JournalError, match="a backup of gateway 'suite-9', not of 'suite-3'"):
        restore(journal_path, other, actor="qa.lee", reason="test")
    with pytest.raises(JournalError, match="a backup of gateway 'suite-9', not of 'suite-3'"):
        restore(tmp_path / "lost.sqlite", other, gateway_id=GW, actor="qa.lee", reason="test")
    edited = tmp_path / "edited.sqlite"
    backup(journal_path, edited)
    tamper(edited, "UPDATE records SET hash = 'x' WHERE seq = 2")
    with pytest.raises(JournalError, match=r"the backup does not verify, nothing was changed.*seq 2"):
        restore(journal_path, edited, actor="qa.lee", reason="test", force=True)
    assert verify(journal_path).last_seq == 3
    assert _leftovers(tmp_path) == []


async def test_restore_keeps_the_replaced_journal_and_the_restored_one_verifies_with_its_audit_entry(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft, tamper: Tamper
) -> None:
    copy = tmp_path / "copy.sqlite"
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 10)
        backup(journal_path, copy)
        to = (journal.last_seq, journal.head_hash)
        await fill(journal, make_draft, 5, start=10)
    tamper(journal_path, "DELETE FROM records WHERE seq = 12")  # the disk fault the backup is for
    broken = verify(journal_path)
    assert broken.first_bad_seq == 12

    report = restore(journal_path, copy, gateway_id=GW, actor="qa.lee", reason="CAPA-7: journal damaged")

    replaced = Path(report.replaced_by or "")
    assert replaced.name.startswith("journal.db.replaced-") and _exists(replaced)
    assert verify(replaced).first_bad_seq == 12  # kept as it was, the damage and all
    with JournalReader(replaced) as old:
        assert old.last_seq() == 15
    restored = verify(journal_path)
    assert restored.ok and (restored.last_seq, restored.head_hash) == to
    with JournalReader(journal_path) as reader:
        entry = reader.audit()[-1]
    assert entry["action"] == "journal.restored" and entry["actor"] == "qa.lee"
    assert entry["reason"] == "CAPA-7: journal damaged"
    assert entry["detail"]["from"]["last_seq"] == 15 and entry["detail"]["from_verified"] is False
    assert (entry["detail"]["to"]["last_seq"], entry["detail"]["to"]["head_hash"]) == to
    assert report.before is not None and report.before.last_seq == 15 and report.after.last_seq == 10
    assert "kept as" in report.summary()
    async with Journal.open(journal_path, gateway_id=GW) as journal:  # the gateway carries on from the backup
        assert list((await journal.append([(make_draft(99), None)])).seqs) == [11]
    assert verify(journal_path).ok


async def test_restore_refuses_to_go_back_over_a_good_journal_unless_forced(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft
) -> None:
    copy = tmp_path / "copy.sqlite"
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 4)
        backup(journal_path, copy)
        await fill(journal, make_draft, 2, start=4)
    with pytest.raises(JournalError, match=r"verifies and goes on to seq 6.*seqs 5\.\. to new records.*--force"):
        restore(journal_path, copy, actor="qa.lee", reason="test")
    report = restore(journal_path, copy, actor="qa.lee", reason="rehearsal", force=True)
    assert report.after.last_seq == 4 and _exists(report.replaced_by or "")


async def test_backup_and_restore_commands(
    journal_path: Path, tmp_path: Path, make_draft: MakeDraft, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gateway.cli.logs.configure", lambda *args: None)
    async with Journal.open(journal_path, gateway_id=GW) as journal:
        await fill(journal, make_draft, 7)
        out = tmp_path / "copy.sqlite"
        capsys.readouterr()  # the journal's own log lines
        assert await asyncio.to_thread(cli.main, ["backup", "--journal", str(journal_path), "-o", str(out), "--json"]) \
            == 0
        result = json.loads(capsys.readouterr().out)
        assert result["ok"] and result["copy_head"]["last_seq"] == 7 == result["source_head"]["last_seq"]
        assert await asyncio.to_thread(cli.main, ["restore", "--journal", str(journal_path), str(out)]) == 1
        assert "in use by another gateway" in capsys.readouterr().err
    assert await asyncio.to_thread(cli.main, ["backup", "--journal", str(journal_path), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["restore", "--journal", str(journal_path), str(out), "--by", "qa.lee", "--reason", "drill"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"restored {journal_path} from {out}") and "by qa.lee" in line
    with closing(sqlite3.connect(journal_path)) as db:
        assert db.execute("SELECT count(*) FROM audit WHERE action = 'journal.restored'").fetchone()[0] == 1
