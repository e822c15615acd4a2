"""The journal's disk fills up: first below the journal's free-space floor, then to the last byte.

The journal lives on a small filesystem of its own (tmpfs, or a loop-mounted ext4 image; skipped with
the reason when this machine allows neither), and a ballast file takes the space away under a running
gateway. What a site relies on:

* below ``journal.min_free_mb`` the gateway refuses new records and stops with one readable line saying
  how much is free and what the floor is; with the floor off, a full disk (ENOSPC) stops it the same
  way, with one line;
* nothing already committed is lost or corrupted: ``cgt-gateway verify`` passes, ``seq`` is gap-free,
  every record committed before keeps its hash;
* once space returns, the gateway starts again and carries on from the next seq, and the MES it
  forwards to ends with every committed record once, in order.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from device_sims.mes import MesStandIn
from device_sims.particle_counter import ParticleCounterSim
from gateway.journal import verify
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_gap_free,
    assert_unchanged,
    counter,
    cursors,
    hashes,
    http_sink,
    last_seq,
    script_counts,
    verify_ok,
    write_site,
)
from tests.reliability.smalldisk import fill_to, small_disk

GW = "gw-rel-disk"
FLOOR_MB = 3


def one_error_line(gw: GatewayProcess, run: int) -> str:
    """The run's last word: exactly one plain (non-log) line on stderr, an ``error:`` line."""
    lines = gw.plain_lines(run)
    assert len(lines) == 1 and lines[0].startswith("error: "), f"run {run}: expected one error line, got {lines}"
    return lines[0]


@pytest.mark.slow
async def test_a_full_disk_refuses_records_in_one_line_loses_nothing_and_the_gateway_carries_on_after(
    tmp_path: Path, rng: random.Random
) -> None:
    disk = tmp_path / "disk"
    with small_disk(disk, size_mb=8) as how:
        print(f"journal on an 8 MB {how}")
        journal = disk / "journal.sqlite"
        async with MesStandIn() as mes, ParticleCounterSim(sample_time_s=0.05, seed=rng.randrange(1000)) as sim:
            script_counts(sim, 1200)

            def site(floor_mb: float) -> Path:
                return write_site(
                    tmp_path, GW, [counter("PC-1", sim.port, poll_s=0.02)], [http_sink(mes.endpoint)],
                    journal="disk/journal.sqlite", journal_options=f"min_free_mb: {floor_mb}",
                )  # fmt: skip

            gw = GatewayProcess(site(FLOOR_MB), journal)
            try:
                # 1. Below the floor: refused, loudly, and the gateway stops.
                await gw.start()
                await gw.wait_for_seq(20)
                fill_to(disk, FLOOR_MB * 1_000_000 + rng.randint(100_000, 400_000))
                assert await gw.wait_exit(30) == 1
                line = one_error_line(gw, 1)
                assert "refusing new records" in line and f"floor of {FLOOR_MB} MB" in line, line
                assert [e["event"] for e in gw.log_events(1) if e["level"] == "error"] == ["journal write failed"]
                assert verify(journal).ok
                at_floor = assert_gap_free(journal)
                kept = hashes(journal)

                # 2. The floor off and the disk full to the last byte: ENOSPC, one line, nothing lost.
                site(0)
                fill_to(disk, 200_000)
                await gw.start(wait_open=False)
                assert await gw.wait_exit(30) == 1
                line = one_error_line(gw, 2)
                assert "full" in line or "No space" in line, line
                assert verify(journal).ok
                when_full = assert_gap_free(journal)
                assert when_full >= at_floor
                assert_unchanged(journal, kept)
                kept = hashes(journal)

                # 3. Space returns: the gateway starts again and carries on from the next seq.
                (disk / "ballast").unlink()
                await gw.start()
                await gw.wait_for_seq(when_full + 50)
                assert await gw.stop() == 0, gw.log_tail()
            finally:
                await gw.close()
            mes_seqs = mes.sequences(GW)
        await verify_ok(gw.site)
        last = assert_gap_free(journal)
        assert_unchanged(journal, kept)
        assert cursors(journal) == {"sink:mes": last}
        assert mes_seqs == list(range(1, last + 1)), "the MES got every committed record once, in order"
        print(
            f"refused at seq {at_floor} (floor), {when_full} (ENOSPC), carried on to {last}; "
            f"{shutil.disk_usage(disk).free / 1e6:.1f} MB free at the end, last seq on disk {last_seq(journal)}"
        )
