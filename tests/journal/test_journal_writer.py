"""The single writer: gap-free seqs, group commit, backpressure, failures, lifecycle, cursors."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from gateway.errors import JournalError
from gateway.journal import Committed, Journal, JournalReader, verify


def _seqs(results: list[Committed]) -> list[int]:
    return sorted(seq for committed in results for seq in committed.seqs)


async def test_concurrent_appenders_get_gap_free_seqs_across_reopen(journal_path: Path, make_draft) -> None:
    async def device(journal: Journal, k: int) -> list[Committed]:
        return [await journal.append([(make_draft(k * 100 + i), None) for i in range(k % 4 + 1)]) for _ in range(5)]

    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        per_device = await asyncio.gather(*(device(journal, k) for k in range(20)))
    results = [c for device_results in per_device for c in device_results]
    total = sum(len(c) for c in results)
    assert _seqs(results) == list(range(1, total + 1))
    for c in results:  # each call's records are consecutive
        assert list(c.seqs) == list(range(c.first_seq, c.first_seq + len(c)))

    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        assert journal.last_seq == total
        again = await asyncio.gather(*(journal.append([(make_draft(i), None)] * 3) for i in range(4)))
    assert _seqs(again) == list(range(total + 1, total + 13))
    report = verify(journal_path)
    assert report.ok and report.records_checked == total + 12
    with JournalReader(journal_path) as reader:
        assert reader.count() == reader.last_seq() == total + 12
        assert [r.seq for r in reader.read(since_seq=total, limit=5)] == list(range(total + 1, total + 6))
        assert {r.equipment_id for r in reader.read(equipment_id="pc-1")} == {"pc-1"}


async def test_group_commit_coalesces_concurrent_appends(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await asyncio.gather(*(journal.append([(make_draft(i), None)] * 10) for i in range(50)))
        stats = journal.stats
    assert stats.rows == 500
    assert stats.transactions < 50 / 5, stats  # 50 appends arriving together share transactions
    assert stats.largest_batch >= 50


async def test_a_commit_window_gathers_reads_arriving_one_after_another(journal_path: Path, make_draft) -> None:
    """Reads that come in turn (not together) share one fsync; a full batch does not wait the window out."""
    async with Journal.open(journal_path, gateway_id="gw-1", commit_window_s=1.0, max_batch_rows=50) as journal:
        async with asyncio.timeout(10):
            appends = []
            for i in range(5):
                appends.append(asyncio.ensure_future(journal.append([(make_draft(i), None)] * 10)))
                await asyncio.sleep(0.01)  # each read arrives on its own
            committed = await asyncio.gather(*appends)
        stats = journal.stats
    assert (stats.rows, stats.transactions) == (50, 1), stats
    assert _seqs(committed) == list(range(1, 51))


async def test_close_does_not_wait_out_the_commit_window(journal_path: Path, make_draft) -> None:
    window = 30.0
    async with asyncio.timeout(10):  # closing, not the window's end, commits the lone append
        async with Journal.open(journal_path, gateway_id="gw-1", commit_window_s=window) as journal:
            pending = asyncio.ensure_future(journal.append([(make_draft(0), None)]))
            await asyncio.sleep(0)
        assert (await pending)[0].seq == 1
    with pytest.raises(ValueError, match="commit_window_s"):
        Journal(journal_path, gateway_id="gw-1", commit_window_s=-1)


async def test_batches_are_bounded_but_one_append_is_never_split(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1", max_batch_rows=25) as journal:
        small = await asyncio.gather(*(journal.append([(make_draft(i), None)] * 10) for i in range(10)))
        assert journal.stats.largest_batch <= 25
        big = await journal.append([(make_draft(i), None) for i in range(60)])
        stats = journal.stats
    assert len(big) == 60 and stats.largest_batch == 60  # alone, in a transaction of its own
    assert _seqs([*small, big]) == list(range(1, 161))


async def test_backpressure_holds_appenders_and_drops_nothing(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1", max_batch_rows=10, max_pending_rows=20) as journal:
        tasks = [asyncio.create_task(journal.append([(make_draft(i), None)] * 10)) for i in range(10)]
        await asyncio.sleep(0)  # one turn: every appender has queued or started to wait
        stats = journal.stats
        assert stats.pending_rows <= 20
        assert stats.waiting_appends > 0
        withdrawn = tasks.pop()
        withdrawn.cancel()  # an append still waiting for room can be withdrawn
        results = await asyncio.gather(*tasks)
        with pytest.raises(asyncio.CancelledError):
            await withdrawn
        assert journal.stats.largest_batch == 10
    assert _seqs(results) == list(range(1, 91))
    assert verify(journal_path).last_seq == 90


async def test_a_queued_append_is_committed_even_if_its_caller_is_cancelled(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        task = asyncio.create_task(journal.append([(make_draft(i), None) for i in range(5)]))
        await asyncio.sleep(0)  # queued: it is the writer's now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = await journal.append([(make_draft(5), None)])
    assert list(after.seqs) == [6]
    assert verify(journal_path).last_seq == 6


async def test_close_commits_everything_queued_and_waiting(journal_path: Path, make_draft) -> None:
    journal = Journal(journal_path, gateway_id="gw-1", max_batch_rows=10, max_pending_rows=10)
    await journal.start()
    tasks = [asyncio.create_task(journal.append([(make_draft(i), None)] * 5)) for i in range(8)]
    await asyncio.sleep(0)
    assert journal.stats.waiting_appends > 0
    await journal.close()
    assert _seqs([task.result() for task in tasks]) == list(range(1, 41))
    await journal.close()  # idempotent
    with pytest.raises(JournalError, match="not open"):
        await journal.append([(make_draft(0), None)])
    with pytest.raises(JournalError, match="already started"):
        await journal.start()


async def test_lifecycle_edges(journal_path: Path) -> None:
    never_started = Journal(journal_path, gateway_id="gw-1")
    await never_started.close()
    assert not journal_path.exists()  # noqa: ASYNC240 (a test's assertion, nothing else runs)
    with pytest.raises(ValueError, match="synchronous"):
        Journal(journal_path, gateway_id="gw-1", synchronous="off")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gateway_id"):
        Journal(journal_path, gateway_id="")


@pytest.mark.parametrize("synchronous", ["full", "normal", "extra"])
async def test_each_synchronous_mode_commits(journal_path: Path, make_draft, synchronous: str) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1", synchronous=synchronous) as journal:  # type: ignore[arg-type]
        await journal.append([(make_draft(i), None) for i in range(3)])
    with closing(sqlite3.connect(journal_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert verify(journal_path).last_seq == 3


async def test_failed_transaction_fails_all_its_appenders_and_leaves_no_gap(
    journal_path: Path, make_draft, tamper
) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(i), None) for i in range(4)])
        # A real failing INSERT, injected into the file: every transaction that would write seq 5 fails.
        tamper(journal_path, "CREATE TRIGGER fail_5 BEFORE INSERT ON records WHEN NEW.seq = 5 "
                             "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        results = await asyncio.gather(
            *(journal.append([(make_draft(i), b"raw")] * 3) for i in range(6)), return_exceptions=True
        )
        assert all(isinstance(r, JournalError) for r in results), results
        assert "injected failure" in str(results[0]) and "none of these 3 records" in str(results[0])
        assert journal.stats.failed_transactions >= 1
        assert journal.last_seq == 4
        tamper(journal_path, "DROP TRIGGER fail_5")
        after = await journal.append([(make_draft(9), None)])
        assert list(after.seqs) == [5]
    report = verify(journal_path)
    assert report.ok and report.last_seq == 5


async def test_another_writer_is_refused_loudly(journal_path: Path, make_draft, tamper, stored_row) -> None:
    # The writer lock refuses a second gateway (test_journal_lock); this is the second line of defence, the
    # store's head check, against a writer that ignores the lock (here raw SQLite).
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(0), None)])
        payload, _, hash_ = stored_row(journal_path, 1)
        row = ("INSERT INTO records VALUES (2, 't', 'x', 'p', ?, NULL, ?, 'measurement')", (payload, hash_))
        tamper(journal_path, row)
        with pytest.raises(JournalError, match="another process is writing"):
            await journal.append([(make_draft(1), None)])
        assert journal.last_seq == 2  # it continues from the file's head, never forks it
        assert list((await journal.append([(make_draft(2), None)])).seqs) == [3]
    assert verify(journal_path).first_bad_seq == 2


async def test_open_refuses_another_gateways_or_a_newer_journal(journal_path: Path, make_draft, tamper) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(0), None)])
    with pytest.raises(JournalError, match="belongs to gateway 'gw-1', not 'gw-2'"):
        async with Journal.open(journal_path, gateway_id="gw-2"):
            pass
    tamper(journal_path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    for attempt in (lambda: JournalReader(journal_path), lambda: verify(journal_path)):
        with pytest.raises(JournalError, match=r"newer than this gateway supports.*upgrade"):
            attempt()
    with pytest.raises(JournalError, match="upgrade cgt-gateway"):
        async with Journal.open(journal_path, gateway_id="gw-1"):
            pass


async def test_open_refuses_files_that_are_not_journals(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    for path, message in ((garbage, "cannot open"), (other, "not a cgt-gateway journal"),
                          (tmp_path / "missing" / "j.db", "does not exist")):
        with pytest.raises(JournalError, match=message):
            async with Journal.open(path, gateway_id="gw-1"):
                pass
    with pytest.raises(JournalError, match="no journal here"):
        JournalReader(tmp_path / "nothing.db")


async def test_cursors_are_durable_and_bounded(journal_path: Path, make_draft) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        assert journal.get_cursor("mes") == 0
        await journal.append([(make_draft(i), None) for i in range(10)])
        await journal.set_cursor("mes", 7)
        await journal.set_cursor("mqtt", 10)
        await journal.set_cursor("mes", 8)
        assert journal.get_cursor("mes") == 8
        with pytest.raises(ValueError, match="beyond the last committed"):
            await journal.set_cursor("mes", 11)
        with pytest.raises(ValueError):
            await journal.set_cursor("mes", -1)
        with pytest.raises(ValueError):
            await journal.set_cursor("", 1)
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        assert (journal.get_cursor("mes"), journal.get_cursor("mqtt"), journal.get_cursor("new")) == (8, 10, 0)
    with JournalReader(journal_path) as reader:
        assert reader.cursors() == {"mes": 8, "mqtt": 10}
        assert reader.get_cursor("mes") == 8
        assert [r.seq for r in reader.read(since_seq=reader.get_cursor("mes"))] == [9, 10]


async def test_a_reader_in_a_thread_sees_only_whole_transactions_while_writing(
    journal_path: Path, make_draft
) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(0), None)])

        def follow(until: int) -> list[int]:
            seen: list[int] = []
            deadline = time.monotonic() + 30
            with JournalReader(journal_path) as reader:
                while (not seen or seen[-1] < until) and time.monotonic() < deadline:
                    for record in reader.read(since_seq=seen[-1] if seen else 0, limit=100):
                        seen.append(record.seq)
                    assert reader.last_seq() % 10 == 1  # never half of an append of 10
            return seen

        async def write() -> None:
            for i in range(50):
                await journal.append([(make_draft(i), None)] * 10)

        seen, _ = await asyncio.gather(asyncio.to_thread(follow, 501), write())
    assert seen == list(range(1, 502))


async def test_flush_waits_for_appends_whose_callers_were_cancelled(journal_path: Path, make_draft) -> None:
    """After the devices stop, the runtime must know the true last record before the sinks drain."""
    async with Journal.open(journal_path, gateway_id="gw", max_batch_rows=5) as journal:
        callers = [asyncio.create_task(journal.append([(make_draft(i), None)])) for i in range(40)]
        await asyncio.sleep(0)  # every append is queued
        for task in callers:
            task.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        assert await journal.flush() == 40 == journal.last_seq


async def test_a_new_journal_appears_whole_and_a_creation_cut_short_is_redone(journal_path: Path, make_draft) -> None:
    """The file is made under another name and renamed into place, so a reader never finds an SQLite file
    without the schema (a qualification rig polling the journal of a gateway it just started did)."""
    leftover = journal_path.with_name(f"{journal_path.name}.creating")
    leftover.write_bytes(b"half a journal from a creation a crash cut short")
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        assert not leftover.exists()
        with JournalReader(journal_path) as reader:
            assert reader.last_seq() == 0 and reader.meta["gateway_id"] == "gw-1"
        await journal.append([(make_draft(0), None)])
    assert verify(journal_path).ok
