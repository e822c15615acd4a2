"""`ClosedProcessorSim`: a LADS-shaped closed-system cell processor on a real OPC UA endpoint.

    async with ClosedProcessorSim(seed=1, time_scale=20_000) as sim:
        async with Client(sim.endpoint) as client: ...
        run_id = await sim.start_program("CAR-T-STD", "LOT-0001")
        sim.inject("temperature_excursion", duration_s=600)
        assert sim.state().step_name == "prime"

The constructor takes plain values only, so a demo can build it from YAML with `ClosedProcessorSim(**opts)`.
Everything it starts (the asyncua server, the publishing loop, a scenario) is owned here and stopped on exit.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from asyncua import Server, ua

from ..lifecycle import Simulator
from ..scenario import parse_scenario, run_scenario
from .faults import Fault, LinkFaults, fault_params, parse_fault, status_code, value_paths
from .model import InvalidState, ProcessModel, RunResult
from .nodes import PROFILES, AddressSpace, MethodHandlers, function_value_path, snapshot
from .server import CERT_NAME, ENDPOINT_PATH, OpcServer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ClosedProcessorState:
    """A snapshot for assertions; `values` are the process values by LADS function name."""

    profile: str
    device_state: str
    functional_unit_state: str
    run_id: str | None
    lot_id: str | None
    step_name: str | None
    step_number: int
    progress_pct: float
    alarms_active: tuple[str, ...]
    faults_active: tuple[str, ...]
    session_count: int
    restart_count: int
    values: Mapping[str, float]
    results: tuple[RunResult, ...]
    device_time: datetime


class ClosedProcessorSim(Simulator):
    """One simulated processor. `time_scale` is simulated seconds per real second (60: a day in 24 min).

    Faults start with `inject()` and end with `clear()`; `await restore()` lifts every fault and puts
    deleted nodes back with their NodeIds. A `restart` keeps the port and the run but drops sessions.
    """

    def __init__(
        self,
        profile: str = "lads",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        time_scale: float = 60.0,
        security: str = "none",
        cert_dir: str | None = None,
        skew_s: float = 0.0,
        update_interval_s: float = 0.2,
        scenario: Sequence[Mapping[str, Any]] | None = None,
        *,
        operator_action_steps: Sequence[str] = (),
        run_on_start: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {port}")
        if time_scale <= 0 or update_interval_s <= 0:
            raise ValueError("time_scale and update_interval_s must be > 0")
        self.profile = profile
        self.security = security
        self.time_scale = float(time_scale)
        self.update_interval_s = float(update_interval_s)
        self._host = host
        self._skew_s = float(skew_s)
        self._cert_dir_arg = Path(cert_dir) if cert_dir else None
        self._tmp_cert_dir: tempfile.TemporaryDirectory[str] | None = None
        rng = random.Random(seed) if seed is not None else random.Random()
        self.model = ProcessModel(rng, operator_action_steps=operator_action_steps)
        self._faults = LinkFaults()
        self._opc = OpcServer(host, port, security, users)
        self._aspace: AddressSpace | None = None
        self._absent: set[str] = set()
        self._lock = asyncio.Lock()
        self._pump_task: asyncio.Task[None] | None = None
        self._scenario = parse_scenario(scenario)
        #: A program started as soon as the server is up (demo): {template_id: ..., lot_id: ...}.
        self._run_on_start = dict(run_on_start) if run_on_start else None
        self._scenario_task: asyncio.Task[None] | None = None
        self._restart_tasks: set[asyncio.Task[None]] = set()
        self._started_once = False
        self._restart_count = 0
        self._log = log.bind(profile=profile)

    # -- endpoint ------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int | None:
        """The bound TCP port (set by the first start, kept across restarts), or None before start."""
        return self._opc.port if self._started_once else None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not started")
        return f"opc.tcp://{self._host}:{self.port}{ENDPOINT_PATH}"

    @property
    def certificate_path(self) -> Path | None:
        """The server certificate (DER) a client can trust, or None without security."""
        cert_dir = self._cert_dir()
        if self.security == "none" or not self._started_once or cert_dir is None:
            return None
        return cert_dir / CERT_NAME

    @property
    def namespace_index(self) -> int | None:
        return self._opc.namespace_index

    def session_count(self) -> int:
        """Client sessions open on the server now (0 while stopped)."""
        return self._opc.session_count()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the endpoint and start publishing; SimulatorError if the port cannot be bound."""
        if self._pump_task is not None:
            raise RuntimeError("the simulator is already running")
        if self.security != "none" and self._cert_dir_arg is None and self._tmp_cert_dir is None:
            self._tmp_cert_dir = tempfile.TemporaryDirectory(prefix="closed-processor-")
        await self._opc.start(self._build, cert_dir=self._cert_dir())
        first_start, self._started_once = not self._started_once, True
        self._pump_task = asyncio.create_task(self._pump(), name=f"closed-processor-sim pump {self.profile}")
        if first_start and self._run_on_start is not None:
            await self.start_program(**self._run_on_start)
        if self._scenario:
            self._scenario_task = asyncio.create_task(
                run_scenario(self, self._scenario), name=f"closed-processor-sim scenario {self.profile}"
            )
        self._log.info("simulator started", endpoint=self.endpoint, security=self.security)

    async def stop(self) -> None:
        """Stop the loops and the server. Safe to call twice."""
        tasks = [t for t in (self._scenario_task, self._pump_task, *self._restart_tasks) if t is not None]
        self._scenario_task = self._pump_task = None
        self._restart_tasks.clear()
        try:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise asyncio.CancelledError  # we are being cancelled ourselves: do not swallow it
            for result in results:
                if isinstance(result, Exception):
                    raise result
        finally:
            self._aspace = None
            await self._opc.stop()
            if self._tmp_cert_dir is not None:
                self._tmp_cert_dir.cleanup()
                self._tmp_cert_dir = None
        self._log.info("simulator stopped")

    async def restart(self) -> None:
        """Stop the server and start a new one on the same port: sessions are lost, the run is not."""
        async with self._lock:
            self._aspace = None
            await self._opc.stop()
            await self._opc.start(self._build, cert_dir=self._cert_dir(), new_certificate=self._faults.new_certificate)
            self._faults.new_certificate = False
            self._restart_count += 1
        self._log.info("server restarted", endpoint=self.endpoint)

    # -- commands (the same as the OPC UA methods) ----------------------------------------------
    async def start_program(
        self, template_id: str, lot_id: str, task_id: str = "", properties: Mapping[str, Any] | None = None
    ) -> str:
        """Start a run; InvalidState if one is active or the template is unknown. Returns the run id."""
        run_id = self.model.start_program(template_id, lot_id, task_id, self._device_now(), properties)
        self._log.info("program started", run_id=run_id, template_id=template_id, lot_id=lot_id)
        await self._publish()
        return run_id

    async def stop_program(self) -> RunResult:
        return await self._end("stopped")

    async def abort_program(self) -> RunResult:
        return await self._end("aborted")

    async def acknowledge(self) -> None:
        """The operator action asked for at a step boundary is done; the run continues."""
        self.model.acknowledge()
        await self._publish()

    # -- faults --------------------------------------------------------------------------------
    def inject(self, fault: str, *, unit_id: int | None = None, **params: Any) -> None:
        """Start a fault now (`unit_id` is accepted for the shared scenario runner and must be None)."""
        if unit_id is not None:
            raise ValueError("a closed processor has no unit ids")
        kind = parse_fault(fault)
        values = fault_params(kind, params)
        model_faults = self.model.faults
        if kind is Fault.RESTART:
            if self._pump_task is None:
                raise RuntimeError("the simulator is not started")
            task = asyncio.create_task(self.restart(), name="closed-processor-sim restart")
            self._restart_tasks.add(task)
            task.add_done_callback(self._restart_tasks.discard)
        elif kind is Fault.STALL:
            self._faults.stall = True
        elif kind is Fault.FREEZE:
            self._faults.freeze = True
            self._opc.freeze(True)
        elif kind is Fault.BAD_STATUS:
            code = status_code(values["status"])
            for path in value_paths(values["nodes"]):
                self._faults.bad_status[path] = code
        elif kind is Fault.DELETE_NODE:
            self._faults.deleted.add(function_value_path(str(values["function"])))
        elif kind is Fault.CLOCK_SKEW:
            self._faults.clock_skew_s = float(values["seconds"])
        elif kind is Fault.CERTIFICATE_CHANGE:
            self._faults.new_certificate = True
        elif kind is Fault.TEMPERATURE_EXCURSION:
            model_faults.excursion_left_s = float(values["duration_s"])
            model_faults.excursion_delta_c = float(values["delta_c"])
        elif kind is Fault.DOOR_OPEN:
            model_faults.door_open = True
        elif kind is Fault.PRESSURE_HIGH:
            model_faults.pressure_high = True
        self._log.info("fault injected", fault=kind.value, **values)

    def clear(self, fault: str) -> None:
        """End one fault. A deleted node comes back on the next tick (or at once with `restore()`)."""
        kind = parse_fault(fault)
        if kind is Fault.RESTART:
            raise ValueError("restart is an event, not a condition: there is nothing to clear")
        model_faults = self.model.faults
        if kind is Fault.STALL:
            self._faults.stall = False
        elif kind is Fault.FREEZE:
            self._faults.freeze = False
            self._opc.freeze(False)
        elif kind is Fault.BAD_STATUS:
            self._faults.bad_status.clear()
        elif kind is Fault.DELETE_NODE:
            self._faults.deleted.clear()
        elif kind is Fault.CLOCK_SKEW:
            self._faults.clock_skew_s = 0.0
        elif kind is Fault.CERTIFICATE_CHANGE:
            self._faults.new_certificate = False
        elif kind is Fault.TEMPERATURE_EXCURSION:
            model_faults.excursion_left_s = 0.0
        elif kind is Fault.DOOR_OPEN:
            model_faults.door_open = False
        elif kind is Fault.PRESSURE_HIGH:
            model_faults.pressure_high = False
        self._log.info("fault cleared", fault=kind.value)

    async def restore(self) -> None:
        """Lift every fault and put deleted nodes back (same NodeIds) before returning."""
        for kind in Fault:
            if kind is not Fault.RESTART:
                self.clear(kind.value)
        async with self._lock:
            await self._reconcile()
        await self._publish()

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> ClosedProcessorState:
        model = self.model
        run = model.run
        alarms = tuple(name for name, on in model.alarms().items() if on)
        return ClosedProcessorState(
            profile=self.profile,
            device_state=self._device_state(),
            functional_unit_state=model.state_name(),
            run_id=run.run_id if run else None,
            lot_id=run.job_id if run else None,
            step_name=run.steps[run.step_index].name if run else None,
            step_number=run.step_index + 1 if run else 0,
            progress_pct=100.0 * run.runtime_s / run.estimated_s if run else 0.0,
            alarms_active=alarms,
            faults_active=self._faults.active() + self._model_faults_active(),
            session_count=self.session_count(),
            restart_count=self._restart_count,
            values=model.values(),
            results=tuple(model.results),
            device_time=self._device_now(),
        )

    # -- internals -----------------------------------------------------------------------------
    def _cert_dir(self) -> Path | None:
        if self._cert_dir_arg is not None:
            return self._cert_dir_arg
        return Path(self._tmp_cert_dir.name) if self._tmp_cert_dir else None

    def _device_now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._skew_s + self._faults.clock_skew_s)

    def _device_state(self) -> str:
        return "Error" if self.model.faults.pressure_high else "Operating"

    def _model_faults_active(self) -> tuple[str, ...]:
        f = self.model.faults
        pairs = ((Fault.TEMPERATURE_EXCURSION, f.excursion_left_s > 0), (Fault.DOOR_OPEN, f.door_open),
                 (Fault.PRESSURE_HIGH, f.pressure_high))  # fmt: skip
        return tuple(k.value for k, on in pairs if on)

    async def _build(self, server: Server, idx: int) -> None:
        aspace = AddressSpace(server, idx, self.profile)
        handlers = MethodHandlers(self._on_start_program, self._on_stop, self._on_abort)
        await aspace.build(handlers, self.model.results)
        self._aspace, self._absent = aspace, set()
        await self._reconcile()
        await self._publish(force=True)

    async def _end(self, outcome: str) -> RunResult:
        result = self.model.end_run(outcome, self._device_now())
        self._log.info("program ended", run_id=result.run_id, outcome=outcome)
        await self._publish()
        return result

    async def _on_start_program(self, template: str, props: dict[str, Any], job: str, task: str) -> str | ua.StatusCode:
        try:
            return await self.start_program(template, job, task, props)
        except InvalidState as exc:
            self._log.info("start refused", reason=str(exc))
            return ua.StatusCode(ua.StatusCodes.BadInvalidState)

    async def _on_stop(self) -> ua.StatusCode | None:
        return await self._end_or_status("stopped")

    async def _on_abort(self) -> ua.StatusCode | None:
        return await self._end_or_status("aborted")

    async def _end_or_status(self, outcome: str) -> ua.StatusCode | None:
        try:
            await self._end(outcome)
        except InvalidState:
            return ua.StatusCode(ua.StatusCodes.BadInvalidState)
        return None

    async def _pump(self) -> None:
        """Advance the model by real time x time_scale and publish, every `update_interval_s`."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.update_interval_s)
            now = loop.time()
            self.model.advance((now - last) * self.time_scale, self._device_now())
            last = now
            async with self._lock:
                await self._reconcile()
            await self._publish()

    async def _reconcile(self) -> None:
        """Make the address space match the delete_node faults and show every finished run."""
        aspace = self._aspace
        if aspace is None:
            return
        for path in sorted(self._faults.deleted - self._absent):
            await aspace.delete(path)
            self._absent.add(path)
        for path in sorted(self._absent - self._faults.deleted):
            await aspace.readd(path)
            self._absent.discard(path)
        for result in self.model.results:
            await aspace.add_result(result)

    async def _publish(self, *, force: bool = False) -> None:
        aspace = self._aspace
        if aspace is None or (self._faults.stall and not force):
            return
        for result in self.model.results:
            await aspace.add_result(result)
        source_ts = self._device_now()
        for path, value in snapshot(self.profile, self.model, self._device_state()).items():
            if path not in self._absent:
                await aspace.write(path, value, source_ts, self._faults.bad_status.get(path))
