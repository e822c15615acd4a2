"""A device that answers slowly, then too slowly, then slowly again, beside one that answers at once.

The slow counter sits behind a relay that holds its answers (``LagRelay``): first well within the
site's ``timeout_s``, then beyond it, then within it again. What a site relies on:

* the other counter's stream never waits for the slow one: it counts on without a gap or a repeat and
  is journalled all through the slow one's timeouts;
* a slow answer within the timeout is a Good reading; beyond it the gateway journals a ``lost`` event
  and a bad-quality record per parameter saying no answer came in time, and no Good value of that
  device until it answers in time again (``restored``);
* a late answer is never taken for the answer to a later request: the slow counter's scripted counts
  come out in order, without a repeat, the missed samples read back from its record buffer.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from device_sims.particle_counter import ParticleCounterSim
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_consecutive,
    communication_events,
    counter,
    counts_of,
    events,
    of_parameter,
    records,
    script_counts,
    write_site,
)
from tests.reliability.lagrelay import LagRelay
from tests.waiting import eventually

GW = "gw-rel-slow"
COUNT = "particle_count_0_5um"
TIMEOUT_S = 0.5
SLOW_S, TOO_SLOW_S = 0.15, 1.0


@pytest.mark.slow
async def test_a_slow_device_is_marked_bad_on_timeout_and_never_holds_up_the_other(
    tmp_path: Path, rng: random.Random
) -> None:
    journal = tmp_path / "journal.sqlite"
    async with (
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as quick,
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as slow,
        LagRelay(("127.0.0.1", slow.port), delay_s=SLOW_S) as relay,
    ):
        script_counts(quick, 600)
        script_counts(slow, 600)
        site = write_site(tmp_path, GW, [counter("PC-1", quick.port), counter("PC-2", relay.port, timeout_s=TIMEOUT_S)])
        gw = GatewayProcess(site, journal)

        def counts(eq: str, since_seq: int = 0) -> int:
            gw.alive()
            return len(counts_of(of_parameter(journal, COUNT, eq, since_seq)))

        try:
            await gw.start()
            await eventually(lambda: counts("PC-2") >= 3, timeout_s=20, what="slow but in-time answers")

            relay.delay_s = TOO_SLOW_S
            await eventually(lambda: events(journal, "PC-2"), timeout_s=20, what="PC-2 lost")
            (lost_seq,) = (r.seq for r in of_parameter(journal, "communication", "PC-2"))
            await eventually(lambda: counts("PC-1", lost_seq) >= 10, timeout_s=20, what="PC-1 while PC-2 times out")
            assert events(journal, "PC-2") == ["lost"], "PC-2 stays down while it answers too late"

            relay.delay_s = SLOW_S
            await eventually(lambda: len(events(journal, "PC-2")) == 2, timeout_s=20, what="PC-2 restored")
            restored_seq = of_parameter(journal, "communication", "PC-2")[-1].seq
            await eventually(lambda: counts("PC-2", restored_seq) >= 5, timeout_s=20, what="PC-2 Good again")
            assert await gw.stop() == 0, gw.log_tail()
        finally:
            await gw.close()

    pc1, pc2 = records(journal, "PC-1"), records(journal, "PC-2")
    assert communication_events(pc1) == [], "PC-1 never noticed PC-2's trouble"
    assert communication_events(pc2) == ["lost", "restored"]
    assert_consecutive(counts_of(pc1), "PC-1 counts")
    assert_consecutive(counts_of(pc2), "PC-2 counts (late answers never taken for later ones)")
    gap = [r for r in pc2 if lost_seq <= r.seq < restored_seq]
    assert gap[0].value == "lost" and gap[0].quality.severity == "bad"
    bad = [r for r in gap[1:] if r.kind != "event"]
    assert bad and all(r.value is None and r.quality.severity == "bad" for r in bad)
    assert re.search(r"no (valid )?answer", gap[0].detail or ""), gap[0].detail  # says it did not answer in time
    assert not [r for r in gap if r.quality == "Good" and r.kind != "event"], "no Good PC-2 value inside its outage"
    print(f"PC-2 outage: {gap[0].quality} '{gap[0].detail}', {len(bad)} bad records")
