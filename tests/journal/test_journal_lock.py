"""One writer per journal: a second gateway (another process or another Journal object) is refused before it
writes anything, named by the holder's pid; readers are unaffected; the lock is free again after close."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.errors import JournalError
from gateway.journal import Journal, JournalReader, lock_path, verify
from tests.journal.conftest import MakeDraft

_REPO = str(Path(__file__).resolve().parents[2])
_HOLDER = textwrap.dedent("""
    import asyncio, sys
    from gateway.journal import Journal

    async def main() -> None:
        async with Journal.open(sys.argv[1], gateway_id="gw-1"):
            print("holding", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    asyncio.run(main())
""")


async def test_a_second_writer_in_this_process_is_refused_and_readers_still_read(
    journal_path: Path, make_draft: MakeDraft
) -> None:
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:
        await journal.append([(make_draft(0), None)])
        second = Journal(journal_path, gateway_id="gw-1")
        with pytest.raises(JournalError) as refused:
            await second.start()
        message = str(refused.value)
        assert f"in use by another gateway (pid {os.getpid()} (this process)" in message
        assert message.endswith("stop it first")
        assert "locked" in message  # what `qualify baseline` and `run --validated` recognise as "gateway running"
        with JournalReader(journal_path) as reader:
            assert reader.last_seq() == 1
        assert verify(journal_path).ok
        assert list((await journal.append([(make_draft(1), None)])).seqs) == [2]  # the holder is untouched
        await second.close()
    async with Journal.open(journal_path, gateway_id="gw-1") as again:  # released on close
        assert again.last_seq == 2
    assert lock_path(journal_path).exists()  # kept: removing it would let two processes lock two files


async def test_a_writer_in_another_process_is_refused_with_its_pid(journal_path: Path) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(journal_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": _REPO},
    )
    try:
        assert holder.stdout is not None
        while (line := await asyncio.wait_for(holder.stdout.readline(), 30)) != b"holding\n":
            assert line, "the holder exited before it held the journal"
        with pytest.raises(JournalError, match=rf"in use by another gateway \(pid {holder.pid} from the lock file"):
            async with Journal.open(journal_path, gateway_id="gw-1"):
                pass
    finally:
        await asyncio.wait_for(holder.communicate(b"\n"), 30)
    assert holder.returncode == 0
    async with Journal.open(journal_path, gateway_id="gw-1") as journal:  # free once that gateway stopped
        assert journal.last_seq == 0


async def test_a_refused_start_leaves_no_thread_and_can_be_retried(journal_path: Path) -> None:
    first = Journal(journal_path, gateway_id="gw-1")
    await first.start()
    second = Journal(journal_path, gateway_id="gw-1")
    with pytest.raises(JournalError, match="in use"):
        await second.start()
    await first.close()
    third = Journal(journal_path, gateway_id="gw-1")
    await third.start()  # the refused attempt did not keep the lock
    await third.close()
