"""The receivers go away under ingest: the MES stand-in process is killed and the broker restarted.

The MES stand-in runs as its own process (``cgt-gateway sim mes`` with ``--jsonl``: every record it took,
one line each) and is killed with SIGKILL by PID, then started again on the same port. While it is
down Mosquitto is stopped and started again on its port too. What a site relies on:

* ``cgt-gateway sinks --json`` shows each sink's backlog growing while its receiver is down, and the
  backlog drains once it is back, while the devices go on being journalled;
* nothing is lost and nothing doubled: the MES file and an MQTT consumer hold every committed record by
  ``(gateway_id, seq)``, first received in seq order (a copy resent across the outage is the same record,
  same hash); a counter scripted to count 1, 2, 3… comes out of the journal without a gap or a repeat.

A restarted stand-in remembers what its file holds (as an MES with a database would) and answers
``duplicate`` for a record resent across the outage, so its file holds each record exactly once.
"""

from __future__ import annotations

import json
import random
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from device_sims.particle_counter import ParticleCounterSim
from gateway.journal import verify
from tests.mosquitto import Mosquitto
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_consecutive,
    assert_gap_free,
    counter,
    counts_of,
    cursors,
    http_sink,
    last_seq,
    mqtt_sink,
    records,
    script_counts,
    sink_status,
    write_site,
)
from tests.simcli import start_cli, stop_cli
from tests.sinks.mqtt.support import consumer
from tests.waiting import eventually

GW = "gw-rel-outage"


def mes_file(path: Path) -> dict[int, list[dict[str, Any]]]:
    """What the MES stand-in(s) wrote, by seq, every copy in order of receipt (dict order = first receipt)."""
    by_seq: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if path.exists():
        for line in path.read_bytes().splitlines():
            record = orjson.loads(line)
            assert record["gateway_id"] == GW
            by_seq[record["seq"]].append(record)
    return by_seq


def settled(journal: Path) -> int:
    """How far the slower of the two sinks has durably got."""
    at = cursors(journal)
    return min(at.get("sink:mes", 0), at.get("sink:uns", 0))


@pytest.mark.slow
async def test_mes_killed_and_broker_restarted_during_ingest_lose_nothing_double_nothing_and_drain(
    tmp_path: Path, mosquitto: Mosquitto, rng: random.Random
) -> None:
    received = tmp_path / "mes-received.jsonl"
    mes, ready = await start_cli("device_sims.mes.cli", "--json", "--jsonl", str(received))
    port = json.loads(ready)["port"]
    journal = tmp_path / "journal.sqlite"
    try:
        async with (
            ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as a,
            ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as b,
            consumer(mosquitto, "cgt/#", "rel-historian") as sub,
        ):
            script_counts(a, 600)
            site = write_site(
                tmp_path, GW, [counter("PC-1", a.port), counter("PC-2", b.port)],
                [http_sink(json.loads(ready)["endpoint"]), mqtt_sink(mosquitto)],
            )  # fmt: skip
            gw = GatewayProcess(site, journal)
            try:
                await gw.start()
                await gw.wait_for_seq(100)
                await eventually(lambda: settled(journal) >= 100, what="both sinks moving")

                await stop_cli(mes, signal.SIGKILL)  # the MES crashes
                mes_down_at = last_seq(journal)
                await gw.wait_for_seq(mes_down_at + rng.randint(200, 400))
                status = await sink_status(site)
                assert status["mes"]["backlog"] >= 200 and status["mes"]["backlog_age_s"] > 0, status
                assert status["mes"]["cursor"] <= mes_down_at, status

                mosquitto.stop()  # the broker restarts while the MES is still down
                broker_down_at = last_seq(journal)
                await gw.wait_for_seq(broker_down_at + rng.randint(150, 300))
                status = await sink_status(site)
                assert status["uns"]["backlog"] >= 150 and status["uns"]["cursor"] <= broker_down_at, status
                mosquitto.start()

                mes, _ = await start_cli(
                    "device_sims.mes.cli", "--port", str(port), "--json", "--jsonl", str(received)
                )  # the MES comes back on the same port
                back_at = last_seq(journal)
                await eventually(lambda: settled(journal) >= back_at, timeout_s=30, what="both backlogs drained")
                gw.alive()  # the devices were journalled all along
                assert await gw.stop() == 0, gw.log_tail()
            finally:
                await gw.close()
            last = assert_gap_free(journal)
            await sub.wait_for(
                lambda: {r["seq"] for r in sub.records()} >= set(range(1, last + 1)), what=f"{last} records"
            )
            mqtt_first = list(dict.fromkeys(r["seq"] for r in sub.records()))
            mqtt_copies = len(sub.records()) - last
    finally:
        await stop_cli(mes)

    assert verify(journal).ok
    status = await sink_status(site)
    assert [(s["backlog"], s["dead_letters"]) for s in status.values()] == [(0, 0), (0, 0)], status
    assert cursors(journal) == {"sink:mes": last, "sink:uns": last}

    taken = mes_file(received)
    assert list(taken) == list(range(1, last + 1)), "MES: every committed record, first received in seq order"
    resent = {seq: len(copies) for seq, copies in taken.items() if len(copies) > 1}
    assert not resent, f"MES took these records more than once: {resent}"
    assert mqtt_first == list(range(1, last + 1)), "MQTT: every committed record, first seen in seq order"
    assert_consecutive(counts_of(records(journal, "PC-1")), "PC-1 scripted counts")
    print(f"{last} records; MQTT copies resent across the outage: {mqtt_copies}")
