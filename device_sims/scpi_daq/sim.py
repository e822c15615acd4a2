"""`ScpiDaqSim`: a multi-channel temperature DAQ on LN₂ storage, speaking SCPI on a TCP socket or a pty.

    async with ScpiDaqSim(transport="tcp", seed=1) as sim:          # port 0: a free port
        rm.open_resource(sim.resource)                              # TCPIP0::127.0.0.1::<port>::SOCKET
        sim.inject("lid_open", duration_s=120)
        sim.state().temperatures_c[104]

The constructor takes plain values only, so a demo builds it from YAML with ``ScpiDaqSim(**options)``.

Faults (``inject(name, **params)``; ``clear(name)`` ends a condition, ``await restore()`` ends them all):

==================  ==========================================================================
``silent``          reads commands, answers nothing (a hung instrument: the client times out)
``wrong_identity``  ``*IDN?`` answers another serial number (a swapped instrument)
``error_queue``     queues ``count`` errors (default: fills the queue to its -350 overflow)
``garbage``         every reply is bytes that are not SCPI
``overload``        ``channel`` (default all) reads +9.9E37, as an open thermocouple does
``disconnect``      TCP: stops listening and drops connections until ``restore()``
``lid_open``        warm air for ``duration_s`` (simulated seconds, default 120): a spike
``ln2_empty``       the LN₂ has run out: slow warming until ``clear("ln2_empty")`` (a refill)
``excursion``       ``channel`` (default all) reads ``temperature_c`` for ``duration_s``
``scripted_temperatures``  ``values=[...]``: the next measurements read exactly these, one per
                    measurement query, on every channel it reads (``9.9e37`` reads as an overload)
``clock_skew``      the clock jumps to ``seconds`` off (on top of ``skew_s``) until cleared
==================  ==========================================================================

The clock (``SYST:DATE?``, ``SYST:TIME?``) is the host's plus ``skew_s``, shown as local time in
``timezone`` (an IANA name; ``UTC`` by default), following its daylight saving time as an instrument set
to local time by a network time service would. ``clock_start`` (an ISO 8601 instant with its offset) sets
it to show that instant when the clock is first asked and run on from there: a fixed date in a site file,
e.g. seconds before a DST change, whatever day the file is run and however long the gateway takes to start.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ..clock import DeviceClock
from ..lifecycle import Simulator
from ..scenario import parse_scenario, run_scenario
from .instrument import Identity, ScpiInstrument
from .model import DEFAULT_CHANNELS, DewarConfig, DewarModel, spread
from .server import PtyLink, TcpLink

log = structlog.get_logger(__name__)

TRANSPORTS = ("tcp", "pty")
FAULTS = (
    "silent", "wrong_identity", "error_queue", "garbage", "overload", "disconnect", "lid_open", "ln2_empty",
    "excursion", "clock_skew", "scripted_temperatures",
)
_ERROR_QUEUE_FILL = 25  # more than the queue holds: the last entry becomes -350 "Queue overflow"


@dataclass(frozen=True)
class DaqState:
    """A snapshot for assertions."""

    temperatures_c: dict[int, float]
    sim_time_s: float
    ln2_present: bool
    lid_open: bool
    faults: tuple[str, ...]
    error_queue: tuple[tuple[int, str], ...]
    scan_list: tuple[int, ...]
    commands: int
    identity_queries: int
    connections: int
    #: How far the instrument's clock is off the host's (``skew_s`` plus a clock_skew fault), in seconds.
    clock_skew_s: float = 0.0


def _instant(clock_start: str | datetime | None) -> datetime | None:
    """``clock_start`` as an aware datetime (None without one); a ValueError when it is no instant with an offset."""
    if clock_start is None:
        return None
    try:
        start = clock_start if isinstance(clock_start, datetime) else datetime.fromisoformat(str(clock_start))
    except ValueError:
        raise ValueError(f"clock_start {clock_start!r} is not an ISO 8601 date and time") from None
    if start.tzinfo is None:
        raise ValueError(f"clock_start {clock_start!r} needs its UTC offset (e.g. 2025-03-30T00:59:55Z)")
    return start


class ScpiDaqSim(Simulator):
    """One simulated DAQ behind one endpoint. See the module docstring for faults."""

    def __init__(
        self,
        transport: str = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        equilibria_c: Sequence[float] | None = None,
        manufacturer: str = "CGT Simulated Instruments",
        model: str = "DAQ-4TC",
        serial: str = "SIM000001",
        firmware: str = "1.0.0",
        time_scale: float = 1.0,
        noise_c: float = 0.05,
        warm_tau_s: float = 12_600.0,
        seed: int | None = None,
        scenario: Sequence[Mapping[str, Any]] | None = None,
        skew_s: float = 0.0,
        timezone: str = "UTC",
        clock_start: str | datetime | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; valid transports: {', '.join(TRANSPORTS)}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {port}")
        chans = tuple(int(c) for c in channels)
        config = DewarConfig(
            channels=chans,
            equilibria_c=tuple(equilibria_c) if equilibria_c is not None else spread(len(chans)),
            time_scale=float(time_scale),
            noise_c=float(noise_c),
            warm_tau_s=float(warm_tau_s),
        )
        try:
            self.timezone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r} (an IANA name such as UTC or Europe/Berlin)") from None
        self.transport = transport
        self.model = DewarModel(config, random.Random(seed) if seed is not None else random.Random())
        self.clock = DeviceClock(skew_s=float(skew_s))
        self._clock_start = _instant(clock_start)
        self.instrument = ScpiInstrument(
            Identity(manufacturer, model, serial, firmware), chans, lambda cs: self.model.measure(self._now(), cs),
            clock=self.device_time,
        )
        self._host = host
        self._requested_port = port
        self._tcp: TcpLink | None = None
        self._pty: PtyLink | None = None
        self._disconnected = False
        self._bound_port: int | None = None
        self._scenario = parse_scenario(scenario)
        self._scenario_task: asyncio.Task[None] | None = None
        self._log = log.bind(transport=transport, serial=serial)

    # -- endpoint ------------------------------------------------------------------------------------
    @property
    def host(self) -> str | None:
        return self._host if self.transport == "tcp" else None

    @property
    def port(self) -> int | None:
        """The TCP port bound (kept across a disconnect and restore, and after stop), or None for a pty."""
        return self._bound_port

    @property
    def serial_path(self) -> str | None:
        """The pty a client opens, or None for TCP."""
        return self._pty.serial_path if self._pty is not None else None

    @property
    def resource(self) -> str:
        """The VISA resource string a client opens."""
        if self.transport == "tcp":
            if self.port is None:
                raise RuntimeError("the simulator is not started")
            return f"TCPIP0::{self._host}::{self.port}::SOCKET"
        if self.serial_path is None:
            raise RuntimeError("the simulator is not started")
        return f"ASRL{self.serial_path}::INSTR"

    @property
    def endpoint(self) -> str:
        """Same as :attr:`resource`: what a site file's ``resource:`` takes (``${sim.NAME.endpoint}``)."""
        return self.resource

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tcp is not None or self._pty is not None:
            raise RuntimeError("the simulator is already running")
        self.model.start = self._now()
        if self.transport == "tcp":
            tcp = TcpLink(self.instrument.handle, self._host, self._bound_port or self._requested_port)
            await tcp.start()
            self._tcp, self._bound_port = tcp, tcp.port
        else:
            self._pty = PtyLink(self.instrument.handle)
            await self._pty.start()
        if self._scenario:
            self._scenario_task = asyncio.create_task(run_scenario(self, self._scenario), name="scpi-daq scenario")
        self._log.info("simulator started", resource=self.resource)

    async def stop(self) -> None:
        """Stop the scenario and the endpoint. Safe to call twice."""
        task, self._scenario_task = self._scenario_task, None
        tcp, pty, self._tcp, self._pty = self._tcp, self._pty, None, None
        try:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            if tcp is not None:
                await tcp.stop()
            if pty is not None:
                await pty.stop()
        self._log.info("simulator stopped")

    # -- faults ----------------------------------------------------------------------------------------
    def inject(self, fault: str, *, unit_id: int | None = None, **params: Any) -> None:
        """Start a fault now (see the module docstring). ``unit_id`` exists for scenarios and must be None."""
        if unit_id is not None:
            raise ValueError("a DAQ has no unit ids; name a channel with channel: instead")
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; faults: {', '.join(FAULTS)}")
        if fault == "scripted_temperatures":
            values = _scripted(params)
            self.model.scripted.extend(values)
            self._log.info("fault injected", fault=fault, values=values)
            return
        faults, now = self.instrument.faults, self._now()
        channel = int(params.pop("channel")) if "channel" in params else None
        if channel is not None and channel not in self.instrument.channels:
            raise ValueError(f"no channel {channel}; channels: {list(self.instrument.channels)}")
        if fault == "silent":
            faults.silent = True
        elif fault == "wrong_identity":
            faults.wrong_identity = True
        elif fault == "garbage":
            faults.garbage = True
        elif fault == "error_queue":
            for i in range(int(params.pop("count", _ERROR_QUEUE_FILL))):
                self.instrument.push_error(-230, f"Data corrupt or stale;input card fault {i + 1}")
        elif fault == "overload":
            faults.overload |= {channel} if channel is not None else set(self.instrument.channels)
        elif fault == "disconnect":
            if self.transport != "tcp":
                raise ValueError("disconnect applies to the TCP transport")
            self._disconnected = True
            if self._tcp is not None:
                self._tcp.drop()
        elif fault == "lid_open":
            self.model.open_lid(now, float(params.pop("duration_s", 120.0)))
        elif fault == "ln2_empty":
            self.model.run_dry(now)
        elif fault == "excursion":
            self.model.force(now, float(params.pop("temperature_c", -140.0)), float(params.pop("duration_s", 60.0)),
                             [channel] if channel is not None else None)
        elif fault == "clock_skew":
            self.clock.inject(float(params.pop("seconds", 0.0)))
        if params:
            raise ValueError(f"fault {fault!r} takes no {', '.join(sorted(params))}")
        self._log.info("fault injected", fault=fault, channel=channel)

    def clear(self, fault: str) -> None:
        """End a condition: silent, wrong_identity, garbage, overload, ln2_empty (refill), error_queue,
        clock_skew, scripted_temperatures (the values not read yet are dropped)."""
        faults = self.instrument.faults
        if fault == "silent":
            faults.silent = False
        elif fault == "wrong_identity":
            faults.wrong_identity = False
        elif fault == "garbage":
            faults.garbage = False
        elif fault == "overload":
            faults.overload.clear()
        elif fault == "ln2_empty":
            self.model.refill(self._now())
        elif fault == "error_queue":
            self.instrument.errors.clear()
        elif fault == "clock_skew":
            self.clock.clear()
        elif fault == "scripted_temperatures":
            self.model.scripted.clear()
        elif fault == "disconnect":
            raise ValueError("a disconnect ends with `await sim.restore()`, which listens again")
        else:
            raise ValueError(f"{fault!r} is not a condition that can be cleared")
        self._log.info("fault cleared", fault=fault)

    async def restore(self) -> None:
        """End every instrument fault and, after a disconnect, listen again on the same port."""
        for fault in ("silent", "wrong_identity", "garbage", "overload", "clock_skew", "scripted_temperatures"):
            self.clear(fault)
        if self._disconnected and self._tcp is not None:
            await self._tcp.start()  # the port it had
        self._disconnected = False
        self._log.info("restored", resource=self.resource)

    # -- state -------------------------------------------------------------------------------------------
    def state(self) -> DaqState:
        self.model.advance(self._now())
        faults = self.instrument.faults
        active = [name for name in ("silent", "wrong_identity", "garbage") if getattr(faults, name)]
        active += ["overload"] if faults.overload else []
        active += ["disconnect"] if self._disconnected else []
        active += ["clock_skew"] if self.clock.skewed else []
        active += ["scripted_temperatures"] if self.model.scripted else []
        return DaqState(
            temperatures_c=dict(self.model.temperatures_c),
            sim_time_s=self.model.sim_time,
            ln2_present=self.model.ln2_present,
            lid_open=self.model.lid_open,
            faults=tuple(active),
            error_queue=tuple(self.instrument.errors),
            scan_list=tuple(self.instrument.scan_list),
            commands=self.instrument.commands,
            identity_queries=self.instrument.identity_queries,
            connections=self._tcp.connections if self._tcp is not None else 0,
            clock_skew_s=self.clock.offset_s,
        )

    def device_time(self) -> datetime:
        """What the instrument's clock shows: local wall time in its zone, without the zone (as SCPI says it)."""
        if self._clock_start is not None:  # set when first asked, not when built
            self.clock.skew_s += (self._clock_start - datetime.now(UTC)).total_seconds()
            self._clock_start = None
        return self.clock.now().astimezone(self.timezone).replace(tzinfo=None)

    def _now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()


def _scripted(params: dict[str, Any]) -> list[float]:
    """The ``values`` of a scripted_temperatures fault: a non-empty list of finite numbers (°C)."""
    if set(params) != {"values"}:
        raise TypeError(f"fault 'scripted_temperatures' takes exactly one parameter, values; got {sorted(params)}")
    values = params["values"]
    if not isinstance(values, list | tuple) or not values:
        raise ValueError("scripted_temperatures values must be a non-empty list of temperatures")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"scripted_temperatures values must be finite numbers, got {v!r}")
        out.append(float(v))
    return out
