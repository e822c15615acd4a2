"""A real asyncua client against one simulator per module: layout, timestamps, programs, node faults.

The server starts once for the module (about 2 s per start/stop); each test leaves it without a run
and without faults, so the order of the tests does not matter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from asyncua import Client, ua

from device_sims.closed_processor import ClosedProcessorSim

from .opcua_support import BIOREACTOR, check_no_leaked_tasks, read, resolve
from .support import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

FSM = f"{BIOREACTOR}/FunctionalUnitState"
ACTIVE = f"{BIOREACTOR}/ProgramManager/ActiveProgram"
TEMPERATURE = f"{BIOREACTOR}/FunctionSet/Temperature/CurrentValue"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[ClosedProcessorSim]:
    async with ClosedProcessorSim(seed=7, time_scale=20_000, update_interval_s=0.05, skew_s=-120.0) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(sim: ClosedProcessorSim) -> AsyncIterator[Client]:
    # A long watchdog: its health probe re-creates a wait_for task every interval, which the per-test
    # leak check would otherwise see as a task the test left behind.
    async with Client(sim.endpoint, timeout=10, watchdog_intervall=3600) as connected:
        yield connected


@pytest_asyncio.fixture(loop_scope="module")
async def _task_leak_check() -> AsyncIterator[None]:
    async for _ in check_no_leaked_tasks():
        yield


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def _clean(sim: ClosedProcessorSim) -> AsyncIterator[None]:
    yield
    if sim.model.run is not None:
        await sim.abort_program()
    await sim.restore()


async def test_every_spec_browse_path_resolves(client: Client) -> None:
    paths = [
        "DeviceSet/ClosedProcessor/DeviceState/CurrentState",
        *(f"DeviceSet/ClosedProcessor/Identification/{n}" for n in ("Manufacturer", "Model", "SerialNumber")),
        f"{FSM}/CurrentState", f"{FSM}/StartProgram", f"{FSM}/Stop", f"{FSM}/Abort",
        *(f"{BIOREACTOR}/FunctionSet/{f}/CurrentValue" for f in
          ("Temperature", "CO2", "pH", "DissolvedOxygen", "Agitation", "Pressure", "CellDensity", "Viability")),
        *(f"{BIOREACTOR}/FunctionSet/{f}/TargetValue" for f in ("Temperature", "CO2")),
        f"{BIOREACTOR}/FunctionSet/DoorOpen/SensorValue",
        *(f"{BIOREACTOR}/ProgramManager/ProgramTemplateSet/{t}/Name" for t in ("CAR-T-STD", "WASH-ONLY")),
        *(f"{ACTIVE}/{n}" for n in ("CurrentState", "CurrentStepName", "CurrentStepNumber", "DeviceProgramRunId",
          "SupervisoryJobId", "SupervisoryTaskId", "ProgramTemplateId", "CurrentRuntime", "EstimatedRuntime",
          "Progress")),
        *(f"{BIOREACTOR}/Alarms/{a}" for a in
          ("TemperatureDeviation", "CO2Deviation", "DoorOpen", "PressureHigh", "OperatorActionRequired")),
    ]  # fmt: skip
    for path in paths:
        await resolve(client, path)
    assert await read(client, "DeviceSet/ClosedProcessor/DeviceState/CurrentState") == "Operating"
    assert await read(client, f"{BIOREACTOR}/FunctionSet/Temperature/TargetValue") == 37.0
    eu = await read(client, f"{TEMPERATURE}/EngineeringUnits")
    assert isinstance(eu, ua.EUInformation) and eu.DisplayName.Text == "Cel"
    assert (await read(client, f"{BIOREACTOR}/FunctionSet/pH/CurrentValue/EngineeringUnits")).DisplayName.Text == "[pH]"
    assert await read(client, f"{ACTIVE}/CurrentStepNumber") == 0
    assert await read(client, f"{ACTIVE}/DeviceProgramRunId") == ""


async def test_values_update_with_device_source_timestamp_and_server_timestamp(
    sim: ClosedProcessorSim, client: Client
) -> None:
    node = await resolve(client, TEMPERATURE)
    first = await node.read_data_value()
    second = await eventually(
        lambda: _newer(node, first.SourceTimestamp), timeout_s=10, what="a newer temperature sample"
    )
    assert 36.5 < second.Value.Value < 37.5
    now = datetime.now(UTC)
    assert second.ServerTimestamp is not None and abs(second.ServerTimestamp - now) < timedelta(seconds=5)
    skew = (second.SourceTimestamp - second.ServerTimestamp).total_seconds()
    assert skew == pytest.approx(-120.0, abs=2.0)  # the device clock, not the server's
    assert sim.session_count() >= 1


async def _newer(node: object, ts: datetime) -> ua.DataValue | None:
    dv = await node.read_data_value()  # type: ignore[attr-defined]
    return dv if dv.SourceTimestamp > ts else None


async def test_start_program_over_opc_ua_then_steps_advance_then_stop_leaves_a_result(
    sim: ClosedProcessorSim, client: Client
) -> None:
    fsm = await resolve(client, FSM)
    method = await resolve(client, f"{FSM}/StartProgram")
    run_id = await fsm.call_method(method, "CAR-T-STD", '{"dose": "1e8"}', "LOT-42", "OP-0010", "[]")
    assert isinstance(run_id, str) and run_id.startswith("run-")
    assert await read(client, f"{ACTIVE}/SupervisoryJobId") == "LOT-42"
    assert await read(client, f"{ACTIVE}/SupervisoryTaskId") == "OP-0010"
    assert await read(client, f"{ACTIVE}/DeviceProgramRunId") == run_id
    assert await read(client, f"{ACTIVE}/CurrentState") == "Running.Execute"
    assert await read(client, f"{FSM}/CurrentState") == "Running.Execute"

    async def step_number() -> bool:
        return int(await read(client, f"{ACTIVE}/CurrentStepNumber")) >= 3  # type: ignore[call-overload]

    await eventually(step_number, timeout_s=5, what="the run to reach selection")
    assert await read(client, f"{ACTIVE}/CurrentStepName") in ("selection", "activation")
    assert 0 < await read(client, f"{ACTIVE}/Progress") < 100  # type: ignore[operator]

    with pytest.raises(ua.UaStatusCodeError) as refused:
        await fsm.call_method(method, "CAR-T-STD", "{}", "LOT-43", "", "[]")
    assert refused.value.code == ua.StatusCodes.BadInvalidState

    await fsm.call_method(await resolve(client, f"{FSM}/Stop"))
    assert await read(client, f"{ACTIVE}/CurrentState") == "Stopped"
    assert await read(client, f"{ACTIVE}/DeviceProgramRunId") == ""
    base = f"{BIOREACTOR}/ProgramManager/ResultSet/{run_id}"
    assert await read(client, f"{base}/Outcome") == "stopped"
    assert await read(client, f"{base}/SupervisoryJobId") == "LOT-42"
    assert await read(client, f"{base}/ProgramTemplateId") == "CAR-T-STD"
    assert await read(client, f"{base}/Ended") >= await read(client, f"{base}/Started")  # type: ignore[operator]
    assert sim.state().results[-1].outcome == "stopped"


async def test_abort_without_a_run_is_bad_invalid_state(client: Client) -> None:
    fsm = await resolve(client, FSM)
    with pytest.raises(ua.UaStatusCodeError) as refused:
        await fsm.call_method(await resolve(client, f"{FSM}/Abort"))
    assert refused.value.code == ua.StatusCodes.BadInvalidState


async def test_delete_node_gives_bad_node_id_unknown_and_restore_brings_it_back(
    sim: ClosedProcessorSim, client: Client
) -> None:
    node = await resolve(client, TEMPERATURE)
    co2 = await resolve(client, f"{BIOREACTOR}/FunctionSet/CO2/CurrentValue")
    sim.inject("delete_node", function="Temperature")

    async def gone() -> bool:
        try:
            await node.read_value()
        except ua.UaStatusCodeError as exc:
            return exc.code == ua.StatusCodes.BadNodeIdUnknown
        return False

    await eventually(gone, timeout_s=10, what="the deleted node to be unknown")
    assert 4.0 < await co2.read_value() < 6.0
    await sim.restore()
    assert 36.0 < await node.read_value() < 38.0  # same NodeId as before
    assert (await resolve(client, TEMPERATURE)).nodeid == node.nodeid


async def test_bad_status_is_visible_to_the_client(sim: ClosedProcessorSim, client: Client) -> None:
    node = await resolve(client, f"{BIOREACTOR}/FunctionSet/pH/CurrentValue")
    sim.inject("bad_status", nodes="pH", status="BadSensorFailure")

    async def bad() -> bool:
        dv = await node.read_data_value(raise_on_bad_status=False)
        return dv.StatusCode.value == ua.StatusCodes.BadSensorFailure

    await eventually(bad, timeout_s=10, what="BadSensorFailure on pH")
    assert "bad_status" in sim.state().faults_active
    sim.clear("bad_status")
    await eventually(lambda: _good(node), timeout_s=10, what="pH good again")


async def _good(node: object) -> bool:
    dv = await node.read_data_value(raise_on_bad_status=False)  # type: ignore[attr-defined]
    return dv.StatusCode.is_good() and 6.8 <= dv.Value.Value <= 7.4


async def test_door_open_and_excursion_set_alarms(sim: ClosedProcessorSim, client: Client) -> None:
    sim.inject("door_open")
    sim.inject("temperature_excursion", duration_s=600_000, delta_c=2.0)

    async def alarms() -> bool:
        door = await read(client, f"{BIOREACTOR}/Alarms/DoorOpen")
        deviation = await read(client, f"{BIOREACTOR}/Alarms/TemperatureDeviation")
        return bool(door and deviation and await read(client, f"{BIOREACTOR}/FunctionSet/DoorOpen/SensorValue"))

    await eventually(alarms, timeout_s=10, what="door and temperature alarms")
    assert set(sim.state().alarms_active) >= {"DoorOpen", "TemperatureDeviation"}


async def test_stall_freezes_values_and_timestamps(sim: ClosedProcessorSim, client: Client) -> None:
    node = await resolve(client, TEMPERATURE)
    sim.inject("stall")
    await asyncio.sleep(0.1)  # let a publish that was under way finish
    frozen = await node.read_data_value()
    await asyncio.sleep(0.3)  # a fixed wait is the point: nothing may change during it
    again = await node.read_data_value()
    assert (again.Value.Value, again.SourceTimestamp) == (frozen.Value.Value, frozen.SourceTimestamp)


async def test_a_run_that_completes_shows_running_complete_and_a_completed_result(
    sim: ClosedProcessorSim, client: Client
) -> None:
    run_id = await sim.start_program("WASH-ONLY", "LOT-77", "OP-2")  # 3 h of process: about 0.5 s here
    await eventually(lambda: sim.model.run is None, timeout_s=5, what="the wash run to complete")

    async def complete() -> bool:
        return await read(client, f"{ACTIVE}/CurrentState") == "Running.Complete"

    await eventually(complete, timeout_s=10, what="ActiveProgram Running.Complete")
    assert await read(client, f"{BIOREACTOR}/ProgramManager/ResultSet/{run_id}/Outcome") == "completed"
    assert await read(client, f"{ACTIVE}/CurrentStepNumber") == 0


async def test_clock_skew_moves_source_timestamps_and_pressure_high_is_a_device_error(
    sim: ClosedProcessorSim, client: Client
) -> None:
    node = await resolve(client, TEMPERATURE)
    sim.inject("clock_skew", seconds=3600)
    sim.inject("pressure_high")

    async def skewed() -> bool:
        dv = await node.read_data_value()
        return (dv.SourceTimestamp - dv.ServerTimestamp).total_seconds() > 3000  # -120 s base skew + 3600 s

    await eventually(skewed, timeout_s=10, what="SourceTimestamps an hour ahead")

    async def error() -> bool:
        state = await read(client, "DeviceSet/ClosedProcessor/DeviceState/CurrentState")
        return state == "Error" and bool(await read(client, f"{BIOREACTOR}/Alarms/PressureHigh"))

    await eventually(error, timeout_s=10, what="DeviceState Error with PressureHigh")
    assert set(sim.state().faults_active) >= {"clock_skew", "pressure_high"}
