"""Store-and-forward end to end: real simulators → real gateway → journal → HTTP sink → MES stand-in.

The MES stand-in is a real HTTP server in this process that dedupes by ``(gateway_id, seq)``; the
gateway runs in-process (``run_gateway``) or as a real process that is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from device_sims.mes import MesStandIn
from device_sims.particle_counter import ParticleCounterSim
from gateway.config import load_site
from gateway.journal import JournalReader, verify
from gateway.plugins import adapter_plugins
from gateway.runtime import RunningGateway, run_gateway
from tests.waiting import eventually

GW = "gw-saf"


def site_file(tmp_path: Path, counters: list[ParticleCounterSim], mes: MesStandIn, *, poll_s: float = 0.05) -> Path:
    equipment = "".join(
        f"  - {{id: PC-{i}, class: particle_counter, kind: modbus, transport: tcp, host: 127.0.0.1,"
        f" port: {sim.port}, device_id: 1, register_map: lighthouse-remote, poll_interval_s: {poll_s}}}\n"
        for i, sim in enumerate(counters)
    )
    path = tmp_path / "site.yaml"
    path.write_text(
        f"gateway: {{id: {GW}}}\n"
        "journal: {path: journal.sqlite}\n"
        "supervisor: {backoff_initial_s: 0.05, backoff_max_s: 0.2}\n"
        f"equipment:\n{equipment}"
        "sinks:\n"
        f"  - {{name: mes, type: http, url: '{mes.endpoint}', timeout_s: 2, late_after_s: 1,\n"
        "     batch: {max_records: 300, max_age_s: 0.05}, retry: {initial_s: 0.05, max_s: 0.3}}\n"
    )
    return path


async def run_while(path: Path, body: Callable[[RunningGateway], object]) -> RunningGateway:
    """Run the gateway until ``body`` (a coroutine function given the running parts) returns."""
    loaded = load_site(path, adapter_plugins())
    started: asyncio.Future[RunningGateway] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(loaded, stop=stop, on_started=started.set_result, drain_grace_s=10))
    try:
        running = await asyncio.wait_for(asyncio.shield(started), 20)
        await body(running)  # type: ignore[misc]
    finally:
        stop.set()
        await runner
    return running


async def cli(*args: str) -> str:
    """Run ``cgt-gateway ARGS`` as a user would; its stdout (exit code 0 required)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def in_order_once(mes: MesStandIn, last_seq: int) -> None:
    assert mes.sequences(GW) == list(range(1, last_seq + 1)), "every committed record, once, in seq order"


async def test_an_mes_outage_under_load_loses_nothing_and_delivers_once_in_order(tmp_path: Path) -> None:
    async with MesStandIn() as mes, ParticleCounterSim(sample_time_s=0.2, seed=1) as a, \
            ParticleCounterSim(sample_time_s=0.2, seed=2) as b:
        await mes.go_down()

        async def outage(gw: RunningGateway) -> None:
            await eventually(lambda: gw.journal.last_seq >= 1500, timeout_s=40, what="1500 records during the outage")
            assert mes.records() == [] and gw.forwarders[0].snapshot().backlog >= 1500
            await mes.come_up()
            await eventually(lambda: len(mes.sequences(GW)) >= 1500, timeout_s=30, what="the backlog delivered")

        running = await run_while(site_file(tmp_path, [a, b], mes), outage)
    last = running.journal.last_seq
    in_order_once(mes, last)
    assert running.forwarders[0].status.cursor == last
    stored = mes.records(GW)
    assert stored[0]["delivery"]["late"] is True  # replayed backlog is marked late, with its original times
    with JournalReader(tmp_path / "journal.sqlite") as reader:
        first = next(reader.read())
    assert stored[0]["gateway_time"] == first.gateway_time.isoformat().replace("+00:00", "Z")
    assert verify(tmp_path / "journal.sqlite").ok


async def test_a_permanent_reject_lands_in_the_dead_letter_list_and_the_rest_flows(tmp_path: Path) -> None:
    async with MesStandIn() as mes, ParticleCounterSim(sample_time_s=0.2, seed=1) as sim:
        mes.reject(parameters=["particle_count_5_0um"], reason="parameter not in the MES recipe")

        async def some(gw: RunningGateway) -> None:
            await eventually(lambda: gw.forwarders[0].snapshot().rejected >= 3, timeout_s=30, what="rejects")

        running = await run_while(site_file(tmp_path, [sim], mes), some)
    with JournalReader(tmp_path / "journal.sqlite") as reader:
        letters = reader.dead_letters()
        by_seq = {r.seq: r for r in reader.read()}
    assert letters and all(by_seq[d.seq].parameter == "particle_count_5_0um" for d in letters)
    assert all(d.reason == "parameter not in the MES recipe" for d in letters)
    taken = set(mes.sequences(GW))
    assert taken.isdisjoint(d.seq for d in letters)
    assert taken | {d.seq for d in letters} == set(range(1, running.journal.last_seq + 1))

    shown = await cli("dead-letters", "-c", str(tmp_path / "site.yaml"), "--json")
    listed = [json.loads(line) for line in shown.splitlines()]
    assert [(x["sink"], x["seq"]) for x in listed] == [("mes", d.seq) for d in letters]
    status = await cli("sinks", "-c", str(tmp_path / "site.yaml"), "--json")
    (mes_status,) = json.loads(status)["sinks"]
    assert mes_status["backlog"] == 0 and mes_status["dead_letters"] == len(letters)


async def test_kill_9_mid_batch_then_restart_gives_the_mes_every_committed_record_exactly_once(tmp_path: Path) -> None:
    async with MesStandIn() as mes, ParticleCounterSim(sample_time_s=0.2, seed=5) as sim:
        path = site_file(tmp_path, [sim], mes)
        journal = tmp_path / "journal.sqlite"
        mes.hang(0.3)  # batches in flight when the kill lands
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "run", "-c", str(path),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            await eventually(lambda: len(mes.sequences(GW)) >= 200, timeout_s=40, what="200 records at the MES")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        with JournalReader(journal) as reader:
            committed = reader.last_seq()
            cursor = reader.get_cursor("sink:mes")
        assert cursor <= len(mes.sequences(GW)) <= committed
        mes.clear()

        rerun = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "run", "-c", str(path), "--for", "3",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(rerun.communicate(), 60)
        assert rerun.returncode == 0, err.decode()
    report = verify(journal)
    assert report.ok and report.last_seq > committed
    in_order_once(mes, report.last_seq)
