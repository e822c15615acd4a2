"""The gateway's own wall clock jumps forwards and backwards while it ingests and forwards.

An NTP step, an operator setting the time, a VM resumed from a snapshot: the edge PC's wall clock jumps
while the gateway runs. The gateway process runs under libfaketime (its wall clock moved through a file,
its monotonic clock left alone, as an NTP step does); the counter and the MES stand-in keep the real
time. What a site relies on:

* polling, batching and retries run on the monotonic clock: after the clock jumps back two hours the
  counter is still read at its pace and the MES still gets its batches (nothing waits for the wall
  clock to catch up), and after it jumps forward nothing fires early or in a burst;
* nothing is lost or doubled: the scripted count comes out 1, 2, 3… across both jumps, seq is gap-free,
  ``verify`` passes, and the MES holds every committed record once, in seq order;
* the records tell the truth about when the gateway stamped them: ``gateway_time`` follows the wall
  clock it had, an hour ahead after the first jump and an hour behind after the second, while ``seq``
  keeps the order.
"""

from __future__ import annotations

import glob
from datetime import timedelta
from pathlib import Path

import pytest

from device_sims.mes import MesStandIn
from device_sims.particle_counter import ParticleCounterSim
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_consecutive,
    assert_gap_free,
    communication_events,
    counter,
    counts_of,
    http_sink,
    last_seq,
    records,
    script_counts,
    verify_ok,
    write_site,
)
from tests.waiting import eventually

GW = "gw-rel-clock"
#: Debian's libfaketime (``make system-deps`` installs it); the MT build, since the gateway has threads.
FAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
#: How far past each jump the counter must keep being read: about 2 s of samples at 0.1 s.
SAMPLES_PER_PHASE = 20


def _faketime_env(offset_file: Path) -> dict[str, str]:
    return {
        "LD_PRELOAD": FAKETIME[0],
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),  # the offset is read from here: "+0", "+3600", "-3600"
        "FAKETIME_NO_CACHE": "1",  # every reading of the clock sees the file as it is
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # an NTP step moves the wall clock only
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(not FAKETIME, reason="libfaketime is not installed (make system-deps installs it)")
async def test_the_gateway_clock_jumping_forwards_and_back_loses_nothing_and_stalls_nothing(tmp_path: Path) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("+0\n")
    journal = tmp_path / "journal.sqlite"
    async with MesStandIn() as mes, ParticleCounterSim(sample_time_s=0.1, seed=5) as sim:
        script_counts(sim, 2000)
        site = write_site(tmp_path, GW, [counter("PC-1", sim.port, poll_s=0.1)], [http_sink(mes.endpoint)])
        gw = GatewayProcess(site, journal, env=_faketime_env(offset))

        async def read_on(phase: str) -> int:
            """Wait until the counter has been read SAMPLES_PER_PHASE more times and the MES has it all."""
            target = len(counts_of(records(journal, "PC-1"))) + SAMPLES_PER_PHASE

            def caught_up() -> bool:
                gw.alive()
                head = last_seq(journal)
                done = len(counts_of(records(journal, "PC-1"))) >= target and mes.sequences(GW)[-1:] == [head]
                return done

            await eventually(caught_up, timeout_s=30, what=f"{SAMPLES_PER_PHASE} reads and delivery {phase}")
            return last_seq(journal)

        try:
            await gw.start()
            before = await read_on("before the jumps")
            offset.write_text("+3600\n")  # an hour forward
            ahead = await read_on("an hour ahead")
            offset.write_text("-3600\n")  # two hours back: an hour behind the real time
            behind = await read_on("an hour behind")
            assert await gw.stop() == 0, gw.log_tail()
        finally:
            await gw.close()

    last = assert_gap_free(journal)
    await verify_ok(site)
    stored = records(journal, "PC-1")
    assert_consecutive(counts_of(stored), "the counter's scripted counts across both jumps")
    assert communication_events(stored) == [], "a clock jump is not a communication loss"
    assert mes.sequences(GW) == list(range(1, last + 1)), "MES: every committed record once, in seq order"

    # gateway_time follows the clock the gateway had: each phase's last record against the first one's
    first = stored[0].gateway_time
    at = {r.seq: r.gateway_time for r in stored}

    def shift(seq: int) -> timedelta:
        return at[max(s for s in at if s <= seq)] - first

    assert timedelta(0) <= shift(before) < timedelta(minutes=5)
    assert timedelta(minutes=59) < shift(ahead) < timedelta(minutes=65)
    assert -timedelta(minutes=61) < shift(behind) < -timedelta(minutes=55)
    print(f"{last} records; gateway_time shifts {shift(before)}, {shift(ahead)}, {shift(behind)}")
