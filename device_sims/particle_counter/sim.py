"""`ParticleCounterSim`: one or more simulated cleanroom particle counters on a real Modbus endpoint.

    async with ParticleCounterSim(profile="airnet2", sample_time_s=0.2, seed=1) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port)
        sim.inject("excursion", samples=3)
        assert sim.state().samples_produced > 0

The constructor takes plain values only (str, int, float, lists) so a demo can build a simulator
straight from YAML with `ParticleCounterSim(**options)`. Everything the simulator starts (the pymodbus
server, the sample clock task, a socat process for RTU) is owned here and stopped on exit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from ..lifecycle import Simulator
from ..scenario import parse_scenario, run_scenario
from .faults import EITHER_SCOPE, LINK_ONLY, Fault, LinkFaults, fault_params, parse_fault, scripted_values
from .model import CounterConfig, CounterModel, CounterState
from .profiles import CounterDevice, device_class
from .ptypair import SocatPtyPair
from .server import ModbusLink

log = structlog.get_logger(__name__)

TRANSPORTS = ("tcp", "rtu")


class ParticleCounterSim(Simulator):
    """Simulated particle counters of one profile behind one Modbus TCP listener or one RTU line.

    Several `unit_ids` on RTU model an RS-485 bus with several counters, each with its own model,
    random stream and faults. Faults are injected with `inject()` and lifted with `clear()`; link faults
    (disconnect, stall, garbage) end with `await restore()`, which reopens the same port or serial path.
    """

    def __init__(
        self,
        profile: str = "lighthouse",
        transport: str = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        unit_ids: Sequence[int] = (1,),
        grade: str = "A",
        state: str = "in_operation",
        sample_time_s: float = 1.0,
        seed: int | None = None,
        *,
        channels_um: Sequence[float] | None = None,
        hold_time_s: float = 0.0,
        flow_cfm: float = 1.0,
        location: int = 1,
        fraction_of_limit: float = 0.2,
        queue_capacity: int | None = None,
        skew_s: float = 0.0,
        autostart: bool = True,
        serial_path: str | None = None,
        scenario: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        cls = device_class(profile)
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; valid transports: {', '.join(TRANSPORTS)}")
        ids = tuple(unit_ids)
        if not ids or len(set(ids)) != len(ids) or not all(1 <= u <= 247 for u in ids):
            raise ValueError(f"unit_ids must be distinct Modbus unit ids within 1..247, got {list(ids)}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {port}")
        if transport == "tcp" and serial_path is not None:
            raise ValueError("serial_path only applies to transport 'rtu'")
        config = CounterConfig(
            channels_um=tuple(channels_um) if channels_um else cls.default_channels_um,
            grade=grade,
            room_state=state,
            sample_time_s=float(sample_time_s),
            buffer_capacity=queue_capacity if queue_capacity is not None else cls.default_buffer_capacity,
            hold_time_s=float(hold_time_s),
            flow_cfm=float(flow_cfm),
            location=location,
            fraction_of_limit=fraction_of_limit,
            autostart=autostart,
        )
        self.profile = profile
        self.transport = transport
        self._devices: dict[int, CounterDevice] = {}
        for unit_id in ids:
            rng = random.Random(f"{seed}/{unit_id}") if seed is not None else random.Random()
            model = CounterModel(config, rng, skew_s=skew_s, on_schedule_change=self._reschedule)
            self._devices[unit_id] = cls(model, unit_id)
        self._link_faults = LinkFaults()
        self._link_rng = random.Random(f"{seed}/link") if seed is not None else random.Random()
        self._host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._serial_path = serial_path
        self._pty: SocatPtyPair | None = None
        self._server: ModbusLink | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._scenario = parse_scenario(scenario)
        self._scenario_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._log = log.bind(profile=profile, transport=transport, unit_ids=list(ids))

    # -- endpoint ------------------------------------------------------------------------------
    @property
    def unit_ids(self) -> tuple[int, ...]:
        """The unit ids served, in the order given."""
        return tuple(self._devices)

    @property
    def host(self) -> str | None:
        """The TCP host listened on, or None for RTU."""
        return self._host if self.transport == "tcp" else None

    @property
    def port(self) -> int | None:
        """The TCP port actually bound (set by the first start and kept across restores), or None."""
        return self._bound_port

    @property
    def serial_path(self) -> str | None:
        """The serial device a client opens (RTU, after start), or None for TCP."""
        return self._pty.client_path if self._pty else None

    @property
    def endpoint(self) -> str:
        """Where a client connects: `tcp://HOST:PORT` or `rtu:///abs/path/to/tty`."""
        if self.transport == "tcp":
            if self.port is None:
                raise RuntimeError("the simulator is not started")
            return f"tcp://{self._host}:{self.port}"
        if self.serial_path is None:
            raise RuntimeError("the simulator is not started")
        return f"rtu://{self.serial_path}"

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the endpoint and start the sample clock; SimulatorError if the endpoint cannot open."""
        if self._clock_task is not None:
            raise RuntimeError("the simulator is already running")
        self._link_faults.disconnected = False
        try:
            serial_port = None
            if self.transport == "rtu":
                self._pty = SocatPtyPair(self._serial_path)
                await self._pty.open()
                serial_port = self._pty.device_path
            self._server = ModbusLink(
                self._devices,
                "tcp" if self.transport == "tcp" else "rtu",
                self._link_faults,
                self._link_rng,
                host=self._host,
                port=self._bound_port or self._requested_port,
                serial_port=serial_port,
            )
            await self._server.start()
            if self.transport == "tcp":
                self._bound_port = self._server.port
        except BaseException:
            await self._close_endpoint()
            raise
        now = asyncio.get_running_loop().time()
        for device in self._devices.values():
            if device.model.config.autostart:
                device.model.start(now)
        self._clock_task = asyncio.create_task(self._run_clock(), name=f"particle-counter-sim clock {self.profile}")
        if self._scenario:
            self._scenario_task = asyncio.create_task(
                run_scenario(self, self._scenario), name=f"particle-counter-sim scenario {self.profile}"
            )
        self._log.info("simulator started", endpoint=self.endpoint)

    async def stop(self) -> None:
        """Stop the clock, the server and socat. Safe to call twice."""
        tasks = [t for t in (self._scenario_task, self._clock_task) if t is not None]
        self._clock_task = self._scenario_task = None
        try:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise asyncio.CancelledError  # we are being cancelled ourselves: do not swallow it
            for result in results:  # a task that died of a bug is not lost
                if isinstance(result, Exception):
                    raise result
        finally:
            await self._close_endpoint()
        self._log.info("simulator stopped")

    # -- faults --------------------------------------------------------------------------------
    def inject(self, fault: str, *, unit_id: int | None = None, **params: Any) -> None:
        """Start a fault now. `unit_id=None` means every unit (or the link, for link faults).

        ``scripted_counts`` takes ``values=[...]``: the next samples carry exactly those counts.
        """
        kind = parse_fault(fault)
        if kind is Fault.SCRIPTED_COUNTS:
            scripted = scripted_values(params)
            for device in self._targets(unit_id):
                device.model.faults.scripted_counts.extend(scripted)
            self._log.info("fault injected", fault=kind.value, unit_id=unit_id, values=scripted)
            return
        values = fault_params(kind, params)
        if kind in LINK_ONLY and unit_id is not None:
            raise ValueError(f"fault {kind.value!r} acts on the whole link; do not pass unit_id")
        if kind is Fault.DISCONNECT:
            self._link_faults.disconnected = True
            if self._server is not None:
                self._server.drop()
        elif kind is Fault.GARBAGE:
            self._link_faults.garbage = True
        elif kind in EITHER_SCOPE and unit_id is None:
            setattr(self._link_faults, kind.value, True)
        else:
            for device in self._targets(unit_id):
                self._inject_unit(kind, device, values)
        self._log.info("fault injected", fault=kind.value, unit_id=unit_id, **values)

    def clear(self, fault: str, *, unit_id: int | None = None) -> None:
        """End a fault. `disconnect` ends with `await restore()`, which must reopen the endpoint."""
        kind = parse_fault(fault)
        if kind is Fault.DISCONNECT:
            raise ValueError("a disconnect ends with `await sim.restore()`, which reopens the endpoint")
        if kind is Fault.RESTART:
            raise ValueError("restart is an event, not a condition: there is nothing to clear")
        if kind is Fault.GARBAGE:
            self._link_faults.garbage = False
        elif kind in EITHER_SCOPE and unit_id is None:
            setattr(self._link_faults, kind.value, False)
        if kind not in LINK_ONLY:
            for device in self._targets(unit_id):
                _clear_unit(kind, device)
        self._log.info("fault cleared", fault=kind.value, unit_id=unit_id)

    async def restore(self) -> None:
        """End every link fault; after a disconnect, listen again on the same port or serial path."""
        self._link_faults.stall = self._link_faults.garbage = self._link_faults.illegal_address = False
        if self._link_faults.disconnected and self._server is not None:
            await self._server.start()
        self._link_faults.disconnected = False
        self._log.info("link restored", endpoint=self.endpoint if self._server else None)

    # -- state ---------------------------------------------------------------------------------
    def state(self, unit_id: int | None = None) -> CounterState:
        """A snapshot of one unit (the first one if `unit_id` is None) for assertions."""
        uid = self.unit_ids[0] if unit_id is None else unit_id
        device = self._device(uid)
        return device.model.snapshot(uid, self.profile, self._now(), self._link_faults.active())

    # -- internals -----------------------------------------------------------------------------
    def _device(self, unit_id: int) -> CounterDevice:
        try:
            return self._devices[unit_id]
        except KeyError:
            raise ValueError(f"unit {unit_id} is not simulated here; units: {list(self._devices)}") from None

    def _targets(self, unit_id: int | None) -> list[CounterDevice]:
        return list(self._devices.values()) if unit_id is None else [self._device(unit_id)]

    def _inject_unit(self, kind: Fault, device: CounterDevice, values: Mapping[str, float]) -> None:
        faults = device.model.faults
        if kind is Fault.EXCURSION:
            faults.excursion_samples_left = int(values["samples"])
            faults.excursion_factor = float(values["factor"])
        elif kind is Fault.FLOW_ALERT:
            faults.flow_fraction = float(values["flow_fraction"])
        elif kind is Fault.LASER_ALERT:
            faults.laser_alert = True
        elif kind is Fault.CALIBRATION_OVERDUE:
            faults.calibration_overdue_days = float(values["days"])
        elif kind is Fault.FROZEN:
            faults.frozen = True
        elif kind is Fault.CLOCK_SKEW:
            faults.clock_skew_s = float(values["seconds"])
        elif kind is Fault.STALL:
            faults.stall = True
        elif kind is Fault.ILLEGAL_ADDRESS:
            faults.illegal_address = True
        elif kind is Fault.RESTART:
            device.restart(self._now())

    def _now(self) -> float:
        """The scheduling clock: the loop's clock, which is time.monotonic() outside a loop too."""
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def _reschedule(self) -> None:
        self._wake.set()

    async def _run_clock(self) -> None:
        """Complete samples when due. Sleeps until the next due time or until a schedule changes."""
        loop = asyncio.get_running_loop()
        models = [device.model for device in self._devices.values()]
        while True:
            self._wake.clear()
            now = loop.time()
            for model in models:
                model.advance(now)
            due = [m.next_due for m in models if m.next_due is not None]
            delay = max(0.0, min(due) - loop.time()) if due else None
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass  # a sample is due: loop round and complete it

    async def _close_endpoint(self) -> None:
        server, self._server = self._server, None
        pty, self._pty = self._pty, None
        try:
            if server is not None:
                await server.stop()
        finally:
            if pty is not None:
                await pty.close()


def _clear_unit(kind: Fault, device: CounterDevice) -> None:
    faults = device.model.faults
    if kind is Fault.EXCURSION:
        faults.excursion_samples_left = 0
    elif kind is Fault.FLOW_ALERT:
        faults.flow_fraction = None
    elif kind is Fault.LASER_ALERT:
        faults.laser_alert = False
    elif kind is Fault.CALIBRATION_OVERDUE:
        faults.calibration_overdue_days = None
    elif kind is Fault.FROZEN:
        faults.frozen = False
    elif kind is Fault.CLOCK_SKEW:
        faults.clock_skew_s = 0.0
    elif kind is Fault.STALL:
        faults.stall = False
    elif kind is Fault.ILLEGAL_ADDRESS:
        faults.illegal_address = False
    elif kind is Fault.SCRIPTED_COUNTS:
        faults.scripted_counts.clear()


def serve(options: Mapping[str, Any]) -> ParticleCounterSim:
    """Build a simulator from a mapping (e.g. a YAML block); use it with `async with`."""
    return ParticleCounterSim(**options)
