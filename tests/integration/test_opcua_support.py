"""Helpers for the OPC UA integration tests (no tests here): a small asyncua server with the node layout
of the simulated closed processor (written out again from the shared layout, not from the node map, so
a wrong path on either side shows), equipment entries for it, and a stand-in for the supervisor's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node

from adapters.opcua import OpcUaEquipmentConfig, plugin
from gateway.adapter import SharedResources
from gateway.errors import DeviceError
from gateway.records import ReadingBatch

URI = "urn:cgt-gateway:sim:closed-processor"
BR = "DeviceSet/ClosedProcessor/FunctionalUnitSet/Bioreactor"
#: The simulator's layout: browse path below Objects → (initial value, variant type).
LAYOUT: dict[str, tuple[Any, ua.VariantType]] = {
    "DeviceSet/ClosedProcessor/DeviceState/CurrentState": ("Operating", ua.VariantType.String),
    "DeviceSet/ClosedProcessor/Identification/Manufacturer": ("cgt-gateway", ua.VariantType.String),
    "DeviceSet/ClosedProcessor/Identification/Model": ("closed-processor-sim", ua.VariantType.String),
    "DeviceSet/ClosedProcessor/Identification/SerialNumber": ("SIM-0001", ua.VariantType.String),
    f"{BR}/FunctionalUnitState/CurrentState": ("Running.Idle", ua.VariantType.String),
    f"{BR}/FunctionSet/Temperature/CurrentValue": (36.9, ua.VariantType.Double),
    f"{BR}/FunctionSet/Temperature/TargetValue": (37.0, ua.VariantType.Double),
    f"{BR}/FunctionSet/CO2/CurrentValue": (5.1, ua.VariantType.Double),
    f"{BR}/FunctionSet/CO2/TargetValue": (5.0, ua.VariantType.Double),
    f"{BR}/FunctionSet/pH/CurrentValue": (7.2, ua.VariantType.Double),
    f"{BR}/FunctionSet/DissolvedOxygen/CurrentValue": (40.0, ua.VariantType.Double),
    f"{BR}/FunctionSet/Agitation/CurrentValue": (60.0, ua.VariantType.Double),
    f"{BR}/FunctionSet/Pressure/CurrentValue": (101.3, ua.VariantType.Double),
    f"{BR}/FunctionSet/DoorOpen/SensorValue": (False, ua.VariantType.Boolean),
    f"{BR}/FunctionSet/CellDensity/CurrentValue": (1.5, ua.VariantType.Double),
    f"{BR}/FunctionSet/Viability/CurrentValue": (95.0, ua.VariantType.Double),
    f"{BR}/ProgramManager/ActiveProgram/CurrentState": ("Stopped", ua.VariantType.String),
    f"{BR}/ProgramManager/ActiveProgram/CurrentStepName": ("", ua.VariantType.String),
    f"{BR}/ProgramManager/ActiveProgram/CurrentStepNumber": (0, ua.VariantType.UInt32),
    f"{BR}/ProgramManager/ActiveProgram/DeviceProgramRunId": ("", ua.VariantType.String),
    f"{BR}/ProgramManager/ActiveProgram/SupervisoryJobId": ("", ua.VariantType.String),
    f"{BR}/ProgramManager/ActiveProgram/SupervisoryTaskId": ("", ua.VariantType.String),
    f"{BR}/ProgramManager/ActiveProgram/ProgramTemplateId": ("", ua.VariantType.String),
    f"{BR}/ProgramManager/ActiveProgram/CurrentRuntime": (0.0, ua.VariantType.Double),
    f"{BR}/ProgramManager/ActiveProgram/EstimatedRuntime": (0.0, ua.VariantType.Double),
    f"{BR}/ProgramManager/ActiveProgram/Progress": (0.0, ua.VariantType.Double),
    **{
        f"{BR}/Alarms/{a}": (False, ua.VariantType.Boolean)
        for a in ("TemperatureDeviation", "CO2Deviation", "DoorOpen", "PressureHigh", "OperatorActionRequired")
    },
}
#: The device clock of the simulated processor runs this far behind (source_time must be the device's).
DEVICE_SKEW = timedelta(seconds=-90)
ACTIVE = f"{BR}/ProgramManager/ActiveProgram"


def quiet_asyncua() -> None:
    """asyncua logs a warning per connect (revised session timeout) and per server start (no certs)."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)


class LadsServer:
    """An asyncua server with the closed processor's layout on a port chosen by the OS (or a given one)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.server: Server | None = None
        self.nodes: dict[str, Node] = {}
        self.extra_setup: Callable[[Server], Any] | None = None
        #: What the device holds; a restart of the server keeps it (the device did not forget its run).
        self.values: dict[str, Any] = {path: value for path, (value, _t) in LAYOUT.items()}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/cgt/closed-processor/"

    async def start(self) -> None:
        quiet_asyncua()
        srv = Server()
        await srv.init()
        srv.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/cgt/closed-processor/")
        if self.extra_setup is not None:
            await self.extra_setup(srv)
        # A few other namespaces first, so the map's namespace is not at index 2.
        await srv.register_namespace("urn:example:other-a")
        await srv.register_namespace("urn:example:other-b")
        idx = await srv.register_namespace(URI)
        folders: dict[str, Node] = {}
        self.nodes = {}
        for path, (value, vtype) in LAYOUT.items():
            parent: Node = srv.nodes.objects
            parts = path.split("/")
            for i, name in enumerate(parts[:-1]):
                key = "/".join(parts[: i + 1])
                if key not in folders:
                    folders[key] = await parent.add_object(ua.NodeId(key, idx), ua.QualifiedName(name, idx))
                parent = folders[key]
            self.nodes[path] = await parent.add_variable(
                ua.NodeId(path, idx), ua.QualifiedName(parts[-1], idx), ua.Variant(value, vtype)
            )
        await srv.start()
        self.server = srv
        self.port = srv.bserver.port
        try:
            for path, value in list(self.values.items()):
                await self.set(path, value)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        srv, self.server = self.server, None
        if srv is not None:
            await srv.stop()
            # asyncua's stop() leaves the sessions of connected clients (and their timer tasks) behind;
            # a real server process that stops takes them with it.
            for session in list(srv.iserver._external_sessions.values()):
                await session.close_session()

    async def set(self, path: str, value: Any, status: int = ua.StatusCodes.Good) -> None:
        """Write a value the way the device does: with the device's (skewed) clock as SourceTimestamp."""
        assert self.server is not None
        if status == ua.StatusCodes.Good:
            self.values[path] = value
        vtype = LAYOUT[path][1]
        dv = ua.DataValue(
            ua.Variant(value, vtype),
            StatusCode=ua.StatusCode(status),
            SourceTimestamp=datetime.now(UTC) + DEVICE_SKEW,
            ServerTimestamp=datetime.now(UTC),
        )
        await self.server.write_attribute_value(self.nodes[path].nodeid, dv)

    def sessions(self) -> int:
        """Sessions the server holds right now (asyncua keeps them in the internal server)."""
        assert self.server is not None
        return len(self.server.iserver._external_sessions)


def equipment(server: LadsServer, node_map: str | Path = "lads-closed-processor", **extra: Any) -> OpcUaEquipmentConfig:
    entry: dict[str, Any] = {
        "id": "CP-1",
        "class": "cell_processor",
        "kind": "opcua",
        "endpoint": server.endpoint,
        "node_map": str(node_map),
        "publishing_interval_ms": 50,
        # generous: a loaded machine can take over a second to answer the first hello; the
        # tests that are about timeouts set their own
        "timeout_s": 5.0,
        "watchdog_interval_s": 0.5,
        "poll_interval_s": 0.2,
    }
    entry.update(extra)
    return OpcUaEquipmentConfig.model_validate(entry)


class Consumer:
    """What the supervisor does, minus the journal: one adapter at a time, a new one after a DeviceError."""

    def __init__(self, eq: OpcUaEquipmentConfig) -> None:
        self.eq = eq
        self.batches: list[ReadingBatch] = []
        self.errors: list[tuple[float, DeviceError]] = []
        self.connects = 0

    async def run_until(self, done: Callable[[Consumer], bool], *, timeout_s: float, retry_s: float = 0.2) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            while True:
                try:
                    async with plugin.create(self.eq, SharedResources()) as adapter:
                        self.connects += 1
                        async for batch in adapter.batches():
                            if batch.readings or batch.events:
                                self.batches.append(batch)
                            if done(self):
                                return
                except DeviceError as exc:
                    self.errors.append((loop.time(), exc))
                    if done(self):
                        return
                    await asyncio.sleep(retry_s)

    def readings(self, point: str) -> list[Any]:
        return [r for b in self.batches for r in b.readings if r.point == point]

    def events(self) -> list[tuple[str, str]]:
        return [e for b in self.batches for e in b.events]


async def first_batches(
    eq: OpcUaEquipmentConfig, done: Callable[[list[ReadingBatch]], bool], timeout_s: float = 20.0
) -> list[ReadingBatch]:
    """Batches of one adapter until ``done`` says enough; DeviceErrors escape."""
    out: list[ReadingBatch] = []
    async with asyncio.timeout(timeout_s), plugin.create(eq, SharedResources()) as adapter:
        async with contextlib.aclosing(adapter.batches()) as batches:
            async for batch in batches:
                out.append(batch)
                if done(out):
                    break
    return out
