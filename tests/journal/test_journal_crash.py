"""kill -9 during ingest loses nothing that was committed, and the journal carries on after it."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gateway
from gateway.journal import Journal, JournalReader, verify

# Eight device tasks append reads of 10 records as fast as they can and print the last seq of each
# read once append has returned, i.e. once it is durable. Logs go to stderr, seqs to stdout.
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
import structlog
from gateway.journal import Journal
from gateway.records import Kind, Quality, RecordDraft

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

def read(device, n):
    now = datetime.now(UTC)
    return [(RecordDraft(equipment_id=f"pc-{device}", equipment_class="particle_counter", parameter=f"p{i}",
                         source=f"sim://{device}/{i}", kind=Kind.MEASUREMENT, value=n * 10 + i, unit="/m3",
                         quality=Quality.GOOD, gateway_time=now, config_hash="c"), bytes([device, i]))
            for i in range(10)]

async def device(journal, k):
    n = 0
    while True:
        committed = await journal.append(read(k, n))
        print(committed.last_seq, flush=True)
        n += 1

async def main():
    async with Journal.open(sys.argv[1], gateway_id="gw-crash", synchronous=sys.argv[2]) as journal:
        await asyncio.gather(*(device(journal, k) for k in range(8)))

asyncio.run(main())
"""


def _committed_until(proc: subprocess.Popen[bytes], at_least: int, timeout_s: float) -> tuple[int, bytes]:
    """Read printed seqs until one reaches ``at_least``; return the highest and the unread rest."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    highest, pending = 0, b""
    while highest < at_least:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the child committed only up to seq {highest} in {timeout_s} s"
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, f"the child exited early: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
        *lines, pending = (pending + chunk).split(b"\n")
        highest = max([highest, *(int(line) for line in lines if line)])
    return highest, pending


def _ingest_and_kill(journal_path: Path, synchronous: str) -> int:
    """Run the child until it has committed 20 000 records, kill -9 it; the highest seq it printed."""
    env = {**os.environ, "PYTHONPATH": str(Path(gateway.__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(journal_path), synchronous],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        highest, pending = _committed_until(proc, at_least=20_000, timeout_s=30)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert proc.stdout is not None
        rest = pending + proc.stdout.read()  # seqs printed before the kill were committed too
        return max([highest, *(int(line) for line in rest.split(b"\n") if line.strip())])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
@pytest.mark.parametrize("synchronous", ["full", "normal"])
async def test_kill_9_mid_ingest_loses_nothing_committed(journal_path: Path, make_draft, synchronous: str) -> None:
    highest = await asyncio.to_thread(_ingest_and_kill, journal_path, synchronous)

    report = await asyncio.to_thread(verify, journal_path)
    assert report.ok, report.summary()
    assert report.last_seq >= highest
    assert report.records_checked == report.last_seq  # seq 1..last, no gap
    with JournalReader(journal_path) as reader:
        assert reader.count() == reader.last_seq() == report.last_seq
        assert reader.last_seq() % 10 == 0  # whole reads only: a transaction is all or nothing

    async with Journal.open(journal_path, gateway_id="gw-crash") as journal:
        assert journal.last_seq == report.last_seq and journal.head_hash == report.head_hash
        after = await journal.append([(make_draft(0), None)])
    assert after.first_seq == report.last_seq + 1
    assert verify(journal_path, anchor=(report.last_seq, report.head_hash)).ok
