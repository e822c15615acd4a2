"""A fleet on one broker: three `cgt-gateway run` processes, each with its own gateway id, journal and
simulated particle counter, publishing to a real Mosquitto that restarts under them; one consumer with a
persistent session checks every gateway's stream.

This is how a site checks completeness across gateways: by ``(gateway_id, seq)``, gap-free per gateway.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from gateway.journal import JournalReader
from tests.mosquitto import Mosquitto
from tests.sinks.mqtt.support import consumer

FLEET = ["gw-suite-1", "gw-suite-2", "gw-suite-3"]


def site_file(folder: Path, gateway_id: str, broker: Mosquitto, suite: int) -> Path:
    folder.mkdir()
    path = folder / "site.yaml"
    path.write_text(
        f"gateway: {{id: {gateway_id}, drain_on_stop_s: 30}}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.1, backoff_max_s: 0.5}\n"
        "simulators:\n"
        "  - {name: counter, kind: particle-counter,\n"
        f"     options: {{profile: lighthouse, transport: tcp, grade: B, state: in_operation, sample_time_s: 0.2,"
        f" seed: {suite}}}}}\n"
        "equipment:\n"
        f"  - {{id: PC-{suite}, class: particle_counter, kind: modbus, transport: tcp,\n"
        f"     isa95: {{site: plant-1, area: suite-{suite}, unit: room-1}},\n"
        "     host: '${sim.counter.host}', port: '${sim.counter.port}', device_id: 1,\n"
        "     register_map: lighthouse-remote, poll_interval_s: 0.1}\n"
        "sinks:\n"
        f"  - {{name: uns, type: mqtt, host: {broker.host}, port: {broker.port},\n"
        "     batch: {max_records: 200, max_age_s: 0.1}, retry: {initial_s: 0.1, max_s: 0.5}}\n"
    )
    return path


@pytest.mark.slow
async def test_three_gateways_on_one_broker_each_stream_is_complete_and_gap_free(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sites = [site_file(tmp_path / gw, gw, mosquitto, i + 1) for i, gw in enumerate(FLEET)]
    async with consumer(mosquitto, "cgt/#", "fleet-historian") as sub:

        def per_gateway() -> dict[str, set[int]]:
            seen: dict[str, set[int]] = defaultdict(set)
            for body in sub.records():
                seen[body["gateway_id"]].add(body["seq"])
            return seen

        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.cli",
                "run",
                "-c",
                str(site),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for site in sites
        ]
        try:
            await sub.wait_for(
                lambda: all(len(per_gateway()[gw]) >= 100 for gw in FLEET), timeout_s=45, what="100 records per gateway"
            )
            # The broker restarts under the fleet: every forwarder reconnects its sink and resends.
            await asyncio.to_thread(mosquitto.restart)
            await sub.wait_for(
                lambda: all(len(per_gateway()[gw]) >= 300 for gw in FLEET), timeout_s=45, what="300 records per gateway"
            )
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)  # a clean stop: the forwarder drains what is committed
            errors = [(await asyncio.wait_for(proc.communicate(), 30))[1] for proc in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [e.decode(errors="replace")[-2000:] for e in errors]

        last = {}
        for gw, site in zip(FLEET, sites, strict=True):
            with JournalReader(site.parent / "journal.sqlite") as reader:
                last[gw] = reader.last_seq()
                assert reader.get_cursor("sink:uns") == last[gw], f"{gw} stopped before forwarding everything"
        await sub.wait_for(
            lambda: all(per_gateway()[gw] >= set(range(1, last[gw] + 1)) for gw in FLEET),
            timeout_s=20,
            what="every committed record of every gateway",
        )
        statuses = {m.topic: m.body for m in sub.messages if "/_gateways/" in m.topic}

    seen = per_gateway()
    for gw in FLEET:
        assert seen[gw] == set(range(1, last[gw] + 1)), f"{gw}: gap or stray seq"  # complete, gap-free, no extra
        assert statuses[f"cgt/_gateways/{gw}/status"]["status"] == "offline"  # closed cleanly, retained
    topics = {m.topic.split("/")[2] for m in sub.messages if "/_gateways/" not in m.topic}
    assert topics == {"suite-1", "suite-2", "suite-3"}  # each gateway on its own ISA-95 branch
