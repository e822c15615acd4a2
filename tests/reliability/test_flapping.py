"""A device that drops off the network and comes back every second or two, beside a steady one.

The flapping counter goes away at random moments, up for about a second, down for about a second: its
endpoint closed (listener and connections: a pulled cable) and reopened on the same port, or silent on an
open connection, or answering line noise. What a site relies on:

* the steady counter's stream has no gap and no repeat (it counts 1, 2, 3…) and no communication event;
* the flapping one leaves each outage as data: one ``lost`` event and a bad-quality record per parameter
  when it drops, one ``restored`` event when it is back, alternating, one pair per outage;
* its status (the operator API's ``/healthz``) says ``degraded`` while the device is away, ``ok`` after;
* the gateway logs each transition once, never crashes, and leaks nothing over the flaps: its open
  file descriptors when the device is up are the same after the last flap as after the first;
  it stops cleanly (exit 0).

Short form: 4 flaps. Long form: ``CGT_RELIABILITY_CYCLES=50``.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from device_sims.particle_counter import ParticleCounterSim
from tests.reliability.conftest import cycles, timeout_for
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_consecutive,
    communication_events,
    counter,
    counts_of,
    events,
    of_parameter,
    proc_counts,
    records,
    script_counts,
    write_site,
)
from tests.waiting import eventually

GW = "gw-rel-flap"
COUNT = "particle_count_0_5um"
FLAPS = cycles(4)
#: How the flapping counter goes away: the endpoint closed (a pulled cable), silent on an open connection
#: (a hung converter), or answering line noise.
OUTAGES = ("disconnect", "disconnect", "stall", "garbage")


async def healthy(gw: GatewayProcess) -> bool:
    health = await gw.health()
    return bool(health["status"] == "ok" and health["devices"] == {"up": 2, "down": 0, "starting": 0})


@pytest.mark.slow
@pytest.mark.timeout(timeout_for(FLAPS, per_cycle_s=4, base_s=20))
async def test_a_flapping_device_leaves_its_gaps_as_data_and_never_touches_the_steady_one(
    tmp_path: Path, rng: random.Random
) -> None:
    journal = tmp_path / "journal.sqlite"
    async with (
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as steady,
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as flapper,
    ):
        script_counts(steady, 100 + FLAPS * 40)
        equipment = [counter("PC-1", steady.port), counter("PC-2", flapper.port, timeout_s=0.3)]
        site = write_site(tmp_path, GW, equipment, api=True)
        gw = GatewayProcess(site, journal)

        def flaps() -> list[str]:
            gw.alive()
            return events(journal, "PC-2")

        try:
            await gw.start()
            await eventually(lambda: of_parameter(journal, COUNT, "PC-2"), timeout_s=20, what="PC-2 read")
            fds: list[int] = []
            kinds: list[str] = []
            for flap in range(FLAPS):
                await asyncio.sleep(rng.uniform(0.5, 1.2))  # up for a random while (the flap's timing, not a wait)
                how = rng.choice(OUTAGES)
                flapper.inject(how)
                kinds.append(how)
                await eventually(lambda f=flap: flaps().count("lost") > f, timeout_s=20, what=f"lost #{flap + 1}")
                health = await gw.health()  # the status says so while the device is away
                assert (health["status"], health["devices"]["down"]) == ("degraded", 1), health
                await asyncio.sleep(rng.uniform(0.5, 1.2))  # down for a random while
                await flapper.restore()
                await eventually(
                    lambda f=flap: flaps().count("restored") > f, timeout_s=20, what=f"restored #{flap + 1}"
                )
                fds.append(proc_counts(gw.pid)[0])
            await eventually(lambda: healthy(gw), timeout_s=10, what="the status ok again")
            assert flaps() == ["lost", "restored"] * FLAPS, "one lost and one restored per outage, alternating"
            assert await gw.stop() == 0, gw.log_tail()
        finally:
            await gw.close()

    steady_records, flapping = records(journal, "PC-1"), records(journal, "PC-2")
    assert communication_events(steady_records) == []
    assert_consecutive(counts_of(steady_records), "the steady counter's counts")
    parameters = {r.parameter for r in flapping if r.kind != "event"}
    for i, lost in enumerate(r for r in flapping if r.parameter == "communication" and r.value == "lost"):
        after = [r for r in flapping if r.seq > lost.seq][: len(parameters)]
        assert {r.parameter for r in after} == parameters, f"outage {i + 1}: a bad record for every parameter"
        assert all(r.value is None and r.quality.severity == "bad" and r.seq == lost.seq + j + 1
                   for j, r in enumerate(after)), f"outage {i + 1}: the gap recorded as bad-quality data"  # fmt: skip

    logged = [(e["event"], e.get("equipment_id")) for e in gw.log_events()]
    assert logged.count(("device lost", "PC-2")) == FLAPS and logged.count(("device recovered", "PC-2")) == FLAPS
    assert not [e for e in logged if e[1] == "PC-1" and e[0] in ("device lost", "device unreachable")]
    assert not [e for e in gw.log_events() if e.get("level") in ("error", "critical")], "no error in the log"
    assert gw.plain_lines() == [], "nothing but structured log lines (no traceback)"
    assert fds[-1] <= fds[0], f"open file descriptors grew over the flaps: {fds}"
    qualities = [str(r.quality) for r in flapping if r.parameter == "communication" and r.value == "lost"]
    print(f"{FLAPS} flaps {list(zip(kinds, qualities, strict=True))}; gateway fds when PC-2 was back: {fds}")
