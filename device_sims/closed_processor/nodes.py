"""The address space: the node layout the gateway's node map is written against, as data plus a builder.

Every node has a string NodeId `<Device>/<path>` in the simulator's namespace, so a node deleted by a
fault comes back with the same NodeId, and a server rebuilt after a restart has the same ids. Browse names
are in that namespace too (each browse-path segment, including `EngineeringUnits`), and the namespace index
is whatever the server hands out: clients resolve it from the URI.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import Node, Server, ua

from .model import TEMPLATES, ProcessModel, RunResult

NAMESPACE_URI = "urn:cgt-gateway:sim:closed-processor"
PROFILES = ("lads", "rotea")
ROOTS = {"lads": "DeviceSet/ClosedProcessor", "rotea": "DeviceSet/Rotea"}
BIOREACTOR = "FunctionalUnitSet/Bioreactor"
FSM = f"{BIOREACTOR}/FunctionalUnitState"
ACTIVE = f"{BIOREACTOR}/ProgramManager/ActiveProgram"
RESULTS = f"{BIOREACTOR}/ProgramManager/ResultSet"

# LADS function -> (UCUM unit code, target value or None for a sensor function)
FUNCTIONS: Mapping[str, tuple[str, float | None]] = {
    "Temperature": ("Cel", 37.0),
    "CO2": ("%", 5.0),
    "pH": ("[pH]", None),
    "DissolvedOxygen": ("%", None),
    "Agitation": ("/min", None),
    "Pressure": ("kPa", None),
    "CellDensity": ("10*6/mL", None),
    "Viability": ("%", None),
}
ALARMS = ("TemperatureDeviation", "CO2Deviation", "DoorOpen", "PressureHigh", "OperatorActionRequired")
IDENTIFICATION = {"Manufacturer": "cgt-gateway", "Model": "Closed Processor SIM-1", "SerialNumber": "CP-0001"}

_V = ua.VariantType
_ACTIVE_VARS: Mapping[str, tuple[ua.VariantType, Any]] = {
    "CurrentState": (_V.String, "Stopped"),
    "CurrentStepName": (_V.String, ""),
    "CurrentStepNumber": (_V.UInt32, 0),
    "DeviceProgramRunId": (_V.String, ""),
    "SupervisoryJobId": (_V.String, ""),
    "SupervisoryTaskId": (_V.String, ""),
    "ProgramTemplateId": (_V.String, ""),
    "CurrentRuntime": (_V.Double, 0.0),
    "EstimatedRuntime": (_V.Double, 0.0),
    "Progress": (_V.Double, 0.0),
}
_ROTEA_VARS: Mapping[str, tuple[ua.VariantType, Any]] = {
    "ProtocolState": (_V.String, "Idle"),
    "ProtocolStepNumber": (_V.UInt32, 0),
    "ProtocolName": (_V.String, ""),
    "WaitingUserAck": (_V.Boolean, False),
    "BatchId": (_V.String, ""),
    "Centrifuge/Speed": (_V.Double, 0.0),
    "Centrifuge/Temperature": (_V.Double, 0.0),
}
_ROTEA_STATE = {"Running.Execute": "Running", "Running.Held": "Paused", "Running.Complete": "Complete",
                "Aborted": "Aborted", "Stopped": "Idle"}  # fmt: skip


def function_value_path(function: str) -> str:
    """Where a function's value lives: `SensorValue` for the door switch, `CurrentValue` for the rest."""
    leaf = "SensorValue" if function == "DoorOpen" else "CurrentValue"
    return f"{BIOREACTOR}/FunctionSet/{function}/{leaf}"


def variables(profile: str) -> dict[str, tuple[ua.VariantType, Any]]:
    """Every variable of a profile by path below the device object, with its type and initial value."""
    if profile == "rotea":
        return dict(_ROTEA_VARS)
    out: dict[str, tuple[ua.VariantType, Any]] = {"DeviceState/CurrentState": (_V.String, "Operating")}
    out.update({f"Identification/{k}": (_V.String, v) for k, v in IDENTIFICATION.items()})
    out[f"{FSM}/CurrentState"] = (_V.String, "Stopped")
    for function, (_unit, target) in FUNCTIONS.items():
        out[function_value_path(function)] = (_V.Double, target if target is not None else 0.0)
        if target is not None:
            out[f"{BIOREACTOR}/FunctionSet/{function}/TargetValue"] = (_V.Double, target)
    out[function_value_path("DoorOpen")] = (_V.Boolean, False)
    for template_id, (name, _steps) in TEMPLATES.items():
        out[f"{BIOREACTOR}/ProgramManager/ProgramTemplateSet/{template_id}/Name"] = (_V.String, name)
    out.update({f"{ACTIVE}/{k}": v for k, v in _ACTIVE_VARS.items()})
    out.update({f"{BIOREACTOR}/Alarms/{a}": (_V.Boolean, False) for a in ALARMS})
    return out


def snapshot(profile: str, model: ProcessModel, device_state: str) -> dict[str, Any]:
    """The value of every dynamic variable now, by path (identification and templates never change)."""
    state = model.state_name()
    run = model.run
    step = run.steps[run.step_index] if run else None
    if profile == "rotea":
        return {
            "ProtocolState": _ROTEA_STATE.get(state, "Idle"),
            "ProtocolStepNumber": run.step_index + 1 if run else 0,
            "ProtocolName": run.template_id if run else "",
            "WaitingUserAck": model.operator_action_required,
            "BatchId": run.job_id if run else "",
            "Centrifuge/Speed": model.agitation_rpm * 100.0,
            "Centrifuge/Temperature": model.temperature_c,
        }
    out: dict[str, Any] = {"DeviceState/CurrentState": device_state, f"{FSM}/CurrentState": state}
    for function, value in model.values().items():
        out[function_value_path(function)] = value
    out[function_value_path("DoorOpen")] = model.faults.door_open
    out.update({f"{BIOREACTOR}/Alarms/{k}": v for k, v in model.alarms().items()})
    out.update({
        f"{ACTIVE}/CurrentState": state,
        f"{ACTIVE}/CurrentStepName": step.name if step else "",
        f"{ACTIVE}/CurrentStepNumber": run.step_index + 1 if run else 0,
        f"{ACTIVE}/DeviceProgramRunId": run.run_id if run else "",
        f"{ACTIVE}/SupervisoryJobId": run.job_id if run else "",
        f"{ACTIVE}/SupervisoryTaskId": run.task_id if run else "",
        f"{ACTIVE}/ProgramTemplateId": run.template_id if run else "",
        f"{ACTIVE}/CurrentRuntime": run.runtime_s if run else 0.0,
        f"{ACTIVE}/EstimatedRuntime": run.estimated_s if run else 0.0,
        f"{ACTIVE}/Progress": 100.0 * run.runtime_s / run.estimated_s if run else 0.0,
    })  # fmt: skip
    return out


@dataclass(frozen=True)
class MethodHandlers:
    """What the OPC UA methods call; each returns output values or a Bad StatusCode, never raises."""

    start_program: Callable[[str, dict[str, Any], str, str], Awaitable[str | ua.StatusCode]]
    stop: Callable[[], Awaitable[ua.StatusCode | None]]
    abort: Callable[[], Awaitable[ua.StatusCode | None]]


class AddressSpace:
    """The simulator's nodes inside one asyncua Server; rebuilt from the model after every restart."""

    def __init__(self, server: Server, idx: int, profile: str) -> None:
        self._server = server
        self._idx = idx
        self.profile = profile
        self._root = ROOTS[profile]
        self._types = variables(profile)
        self._objects: dict[str, Node] = {}
        self.results_shown: set[str] = set()

    def nodeid(self, path: str) -> ua.NodeId:
        return ua.NodeId(f"{self._root}/{path}", self._idx)

    async def build(self, handlers: MethodHandlers, results: list[RunResult]) -> None:
        for path, (vt, value) in self._types.items():
            await self._add_variable(path, vt, value)
        if self.profile == "lads":
            await self._add_lads_methods(handlers)
        else:
            await self._add_rotea_methods(handlers)
        for result in results:
            await self.add_result(result)

    async def write(self, path: str, value: Any, source_ts: datetime, status: int | None = None) -> None:
        """Fast in-process write with the device's SourceTimestamp; a Bad status comes with a null value."""
        vt = self._types[path][0]
        dv = ua.DataValue(
            ua.Variant(value, vt),
            StatusCode=ua.StatusCode(status if status is not None else ua.StatusCodes.Good),
            SourceTimestamp=source_ts,
            ServerTimestamp=datetime.now(UTC),
        )
        await self._server.write_attribute_value(self.nodeid(path), dv)

    async def delete(self, path: str) -> None:
        await self._server.delete_nodes([self._server.get_node(self.nodeid(path))], recursive=True)

    async def readd(self, path: str) -> None:
        vt, value = self._types[path]
        await self._add_variable(path, vt, value)

    async def add_result(self, result: RunResult) -> None:
        if self.profile != "lads" or result.run_id in self.results_shown:
            return
        self.results_shown.add(result.run_id)  # first, so a concurrent publish does not add it twice
        base = f"{RESULTS}/{result.run_id}"
        for name, vt, value in (
            ("SupervisoryJobId", _V.String, result.job_id),
            ("ProgramTemplateId", _V.String, result.template_id),
            ("Started", _V.DateTime, result.started),
            ("Ended", _V.DateTime, result.ended),
            ("Outcome", _V.String, result.outcome),
        ):
            await self._add_variable(f"{base}/{name}", vt, value)

    # -- internals -----------------------------------------------------------------------------
    async def _object(self, path: str) -> Node:
        """The object at a path below Objects (created on first use, one per segment)."""
        if path in self._objects:
            return self._objects[path]
        parent_path, _, name = path.rpartition("/")
        parent = await self._object(parent_path) if parent_path else self._server.nodes.objects
        node = await parent.add_object(ua.NodeId(path, self._idx), ua.QualifiedName(name, self._idx))
        self._objects[path] = node
        return node

    async def _add_variable(self, path: str, vt: ua.VariantType, value: Any) -> None:
        parent_path, _, name = f"{self._root}/{path}".rpartition("/")
        parent = await self._object(parent_path)
        var = await parent.add_variable(self.nodeid(path), ua.QualifiedName(name, self._idx), ua.Variant(value, vt))
        function = path.split("/")[-2] if path.endswith("/CurrentValue") else None
        if function in FUNCTIONS:
            unit = FUNCTIONS[function][0]
            eu = ua.EUInformation(
                NamespaceUri="http://unitsofmeasure.org", UnitId=-1, DisplayName=ua.LocalizedText(unit),
                Description=ua.LocalizedText(unit),
            )  # fmt: skip
            await var.add_property(
                ua.NodeId(f"{self._root}/{path}/EngineeringUnits", self._idx),
                ua.QualifiedName("EngineeringUnits", self._idx),
                eu,
            )

    async def _add_method(
        self, path: str, func: Callable[..., Awaitable[Any]], ins: list[str], outs: list[str]
    ) -> None:
        parent_path, _, name = f"{self._root}/{path}".rpartition("/")
        parent = await self._object(parent_path)
        await parent.add_method(
            self.nodeid(path), ua.QualifiedName(name, self._idx), func, [_arg(n) for n in ins], [_arg(n) for n in outs]
        )

    async def _add_lads_methods(self, handlers: MethodHandlers) -> None:
        async def start_program(_parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
            template, props, job, task, _samples = (_text(a) for a in (*args, *[None] * 5)[:5])
            try:
                properties = json.loads(props) if props else {}
            except ValueError:
                return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            if not isinstance(properties, dict):
                return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            out = await handlers.start_program(template, properties, job, task)
            return out if isinstance(out, ua.StatusCode) else [ua.Variant(out, _V.String)]

        async def stop(_parent: ua.NodeId) -> ua.StatusCode | list[ua.Variant]:
            return await handlers.stop() or []

        async def abort(_parent: ua.NodeId) -> ua.StatusCode | list[ua.Variant]:
            return await handlers.abort() or []

        ins = ["ProgramTemplateId", "Properties", "SupervisoryJobId", "SupervisoryTaskId", "Samples"]
        await self._add_method(f"{FSM}/StartProgram", start_program, ins, ["DeviceProgramRunId"])
        await self._add_method(f"{FSM}/Stop", stop, [], [])
        await self._add_method(f"{FSM}/Abort", abort, [], [])

    async def _add_rotea_methods(self, handlers: MethodHandlers) -> None:
        async def start_protocol(_parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
            name, batch = (_text(a) for a in (*args, None, None)[:2])
            out = await handlers.start_program(name, {}, batch, "")
            return out if isinstance(out, ua.StatusCode) else [ua.Variant(out, _V.String)]

        await self._add_method("StartProtocol", start_protocol, ["ProtocolName", "BatchId"], ["RunId"])


def _arg(name: str) -> ua.Argument:
    return ua.Argument(Name=name, DataType=ua.NodeId(ua.ObjectIds.String), ValueRank=-1)


def _text(arg: ua.Variant | str | None) -> str:
    value = arg.Value if isinstance(arg, ua.Variant) else arg
    return "" if value is None else str(value)
