"""The OPC UA adapter under the real supervisor and pipeline: lots reach records, a restart is a gap in the data."""

from __future__ import annotations

import asyncio
import random

from adapters.opcua import plugin
from gateway.adapter import SharedResources
from gateway.config import SupervisorConfig
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, Quality
from gateway.supervisor import DeviceSupervisor
from tests.fakes import Collector
from tests.integration.test_opcua_support import ACTIVE, BR, LadsServer, equipment

FAST = SupervisorConfig(backoff_initial_s=0.05, backoff_max_s=0.2, backoff_jitter=0.0)


async def test_a_run_and_a_restart_under_the_supervisor() -> None:
    server = LadsServer()
    await server.start()
    try:
        eq = equipment(server)
        pipeline = EquipmentPipeline(eq, plugin.device_map(eq), "h" * 64)
        sink = Collector()
        sup = DeviceSupervisor(
            eq, lambda: plugin.create(eq, SharedResources()), pipeline, sink, FAST, rng=random.Random(1)
        )
        task = asyncio.create_task(sup.run())
        try:
            await sink.until(lambda ds: any(d.parameter == "temperature" for d in ds))
            for leaf, value in (("SupervisoryJobId", "LOT-SUP-1"), ("ProgramTemplateId", "CAR-T-STD"),
                                ("CurrentStepName", "prime"), ("CurrentState", "Running.Execute"),
                                ("DeviceProgramRunId", "RUN-S1")):
                await server.set(f"{ACTIVE}/{leaf}", value)
            await server.set(f"{BR}/FunctionSet/Temperature/CurrentValue", 37.2)
            await sink.until(lambda ds: any(d.parameter == "temperature" and d.lot_id == "LOT-SUP-1" for d in ds))
            mark = len(sink.drafts)
            await server.stop()
            await sink.until(lambda ds: any(d.value == "lost" for d in ds[mark:]))
            await server.start()  # same port; the run is still going on the device
            await sink.until(lambda ds: any(d.value == "restored" for d in ds[mark:]))
            await sink.until(lambda ds: any(d.value == "run_in_progress" for d in ds[mark:]))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert server.sessions() == 0
    finally:
        await server.stop()
    drafts = sink.drafts
    started = [d for d in drafts if d.parameter == "device_event" and d.value in ("run_started", "run_in_progress")]
    assert [d.value for d in started] == ["run_started", "run_in_progress"]  # one run, seen again after the gap
    assert all(d.lot_id == "LOT-SUP-1" and "lot LOT-SUP-1" in (d.detail or "") for d in started)
    lost = [d for d in drafts[mark:] if d.value is None and d.quality is Quality.BAD_COMMUNICATION_ERROR]
    assert {d.parameter for d in lost} >= {"temperature", "ph", "program_lot"}, "the outage is data for every parameter"
    assert all(d.detail and "CP-1" in d.detail for d in lost)
    after = [d for d in drafts[mark:] if d.parameter == "temperature" and d.quality is Quality.GOOD]
    assert after and all(d.lot_id == "LOT-SUP-1" and d.process_step == "prime" for d in after)
    assert all(d.kind is not Kind.EVENT or d.parameter in ("device_event", "communication") for d in drafts)
