"""kill -9 of the gateway process under load, at random moments, again and again.

Two simulated counters feed a ``cgt-gateway run`` process that forwards to the MES stand-in over HTTP
and to a real Mosquitto; the process is killed with SIGKILL at a random point of its ingest (sometimes
with MES answers held, so batches are in flight), and started again. What a site relies on:

* after every kill the journal verifies and ``seq`` is gap-free; what was committed before a kill is
  never rewritten by a later run (same hash at the same seq);
* every restarted run verifies while it runs (``cgt-gateway verify`` beside the writer);
* after a final clean stop, the MES and an MQTT consumer hold every committed record exactly once by
  ``(gateway_id, seq)``, first received in seq order, and both cursors stand at the last record.

Short form: 3 kills (one in four, after the first, while the run starts up). Long form: ``CGT_RELIABILITY_CYCLES=50``.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from device_sims.mes import MesStandIn
from device_sims.particle_counter import ParticleCounterSim
from gateway.journal import verify
from tests.mosquitto import Mosquitto
from tests.reliability.conftest import cycles, timeout_for
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_gap_free,
    assert_unchanged,
    counter,
    cursors,
    hashes,
    http_sink,
    last_seq,
    mqtt_sink,
    verify_ok,
    write_site,
)
from tests.sinks.mqtt.support import Consumer, consumer

GW = "gw-rel-kill"
KILLS = cycles(3)


def first_receipts(sub: Consumer) -> list[int]:
    """The seqs of this gateway's record messages, each at its first arrival (a consumer drops resends)."""
    return list(dict.fromkeys(body["seq"] for body in sub.records() if body["gateway_id"] == GW))


@pytest.mark.slow
@pytest.mark.timeout(timeout_for(KILLS, per_cycle_s=7, base_s=20))
async def test_kill_9_at_random_moments_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto, rng: random.Random
) -> None:
    async with (
        MesStandIn() as mes,
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as a,
        ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as b,
        consumer(mosquitto, "cgt/#", "rel-historian") as sub,
    ):
        site = write_site(
            tmp_path, GW, [counter("PC-1", a.port), counter("PC-2", b.port)],
            [http_sink(mes.endpoint), mqtt_sink(mosquitto)],
        )  # fmt: skip
        journal = tmp_path / "journal.sqlite"
        gw = GatewayProcess(site, journal)
        heads: dict[int, str] = {}  # seq at each kill -> its hash then
        try:
            for cycle in range(KILLS):
                hold = rng.choice([0.0, 0.0, 0.3])
                mes.hang(hold)  # sometimes the MES holds its answers: the kill lands with batches in flight
                before = last_seq(journal)
                if cycle and rng.random() < 0.25:  # now and then the kill lands while the run starts up
                    await gw.start(wait_open=False)
                    moment = "start-up"
                    await asyncio.sleep(rng.uniform(0.8, 2.0))  # the kill's random moment
                else:
                    await gw.start()
                    moment = "ingest"
                    target = before + rng.randint(20, 250)
                    if cycle:  # a restarted run verifies beside its writer while it ingests
                        await asyncio.gather(gw.wait_for_seq(target, timeout_s=40), verify_ok(site))
                    else:
                        await gw.wait_for_seq(target, timeout_s=40)
                    await asyncio.sleep(rng.uniform(0, 0.3))  # the kill's random moment (not a wait for anything)
                await gw.kill9()
                mes.clear()  # release held answers: the dead run's batches land before the next run's
                head = assert_gap_free(journal)
                report = verify(journal)
                assert report.ok, f"after kill {cycle + 1} at seq {head}: {report.reason}"
                if head:
                    heads[head] = hashes(journal)[head]
                print(
                    f"kill {cycle + 1} during {moment}: seq {head} committed, MES answers held {hold} s, "
                    f"sinks at {cursors(journal)}"
                )
            await gw.start()
            await gw.wait_for_seq(last_seq(journal) + 50, timeout_s=40)
            assert await gw.stop() == 0, gw.log_tail()
        finally:
            await gw.close()

        last = assert_gap_free(journal)
        await verify_ok(site)
        assert_unchanged(journal, heads, "a record committed before a kill was rewritten")
        assert cursors(journal) == {"sink:mes": last, "sink:uns": last}, "the clean stop left a backlog"
        assert mes.sequences(GW) == list(range(1, last + 1)), "MES: every committed record once, in seq order"
        await sub.wait_for(lambda: len(first_receipts(sub)) >= last, timeout_s=20, what=f"{last} records")
        assert first_receipts(sub) == list(range(1, last + 1)), "MQTT: every committed record, first seen in order"
        print(f"{KILLS} kills, {last} records; resent copies: MES {mes.duplicates}, MQTT {len(sub.records()) - last}")
