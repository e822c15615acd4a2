"""`BactAlertSim`: a simulated BacT/ALERT sending bottle results as ASTM E1381/E1394 on a pty.

    async with BactAlertSim(bottles=[{"lot": "LOT-1", "ttd_h": 12}], time_scale=36_000) as sim:
        # the gateway opens sim.serial_path; results arrive as the simulated hours pass
        sim.inject("corrupt_checksum", count=1)
        assert sim.state().naks == 1 ...

The instrument side of the link is written here, apart from the gateway's codec. It sends a message
(ENQ, frames, EOT) for each status change — a bottle loaded (in progress), positive, negative — keeps a
message queued until it has gone through whole, and answers a LIS2-A2 query (Q record) with every bottle.
Link faults and scripted results (a corrected result, a message sent again) are injected with `inject()`
(see FAULTS) and lifted with `await restore()`, which also puts a dropped line back.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ..lifecycle import Simulator
from ..scenario import parse_scenario, run_scenario
from . import astm
from .endpoint import PtyEndpoint
from .model import READING_INTERVAL, Bottle
from .state import FAULTS, Counters, Faults, LinkCounts, Outgoing, SimState

log = structlog.get_logger(__name__)

class BactAlertSim(Simulator):
    """Bottles, a simulated clock and the instrument's end of an ASTM serial line."""

    host: str | None = None
    port: int | None = None

    def __init__(
        self,
        bottles: Sequence[Mapping[str, Any]] | None = None,
        *,
        lot: str = "LOT-SIM-0001",
        time_scale: float = 60.0,
        protocol_days: float = 5.0,
        start: str | None = None,
        instrument_id: str = "BTA3D-01",
        serial_number: str = "SN1234",
        report_loads: bool = True,
        reply_s: float = 15.0,
        receive_s: float = 30.0,
        busy_retry_s: float = 10.0,
        contention_s: float = 1.0,
        max_attempts: int = 6,
        serial_path: str | None = None,
        scenario: Sequence[Mapping[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        raw = bottles if bottles is not None else [{"ttd_h": 14.0}, {}, {"bottle_type": "iNST"}]
        self.bottles = [Bottle.from_options({"lot": lot, **b}, i, protocol_days) for i, b in enumerate(raw)]
        self.time_scale = float(time_scale)
        self.start_time = datetime.fromisoformat(start) if start else datetime.now(UTC).replace(microsecond=0)
        if self.start_time.tzinfo is None:
            self.start_time = self.start_time.replace(tzinfo=UTC)
        self.instrument_id, self.serial_number = instrument_id, serial_number
        self.report_loads = report_loads
        self.reply_s, self.receive_s, self.busy_retry_s = reply_s, receive_s, busy_retry_s
        self.contention_s, self.max_attempts = contention_s, max_attempts
        self.faults = Faults()
        self._counters = Counters()
        self._outbox: deque[Outgoing] = deque()
        self._not_before = 0.0
        self._endpoint = PtyEndpoint(serial_path)
        self._endpoint.on_data = self._poke
        self._wake = asyncio.Event()
        self._rng = random.Random(seed)
        self._garbage: list[bytes] = []
        #: Per bottle, each test's R record as last queued: a result is sent again as it was, and a
        #: correction marks only the results that changed.
        self._results: dict[str, dict[str, str]] = {}
        self._last_sent: Outgoing | None = None
        self._scenario = parse_scenario(scenario)
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0
        self._log = log.bind(sim="bactalert")

    # -- endpoint and lifecycle ---------------------------------------------------------------------
    @property
    def serial_path(self) -> str | None:
        """The path a client opens (a stable link to the current pty), after start."""
        return self._endpoint.path or None

    @property
    def endpoint(self) -> str:
        if not self._endpoint.path:
            raise RuntimeError("the simulator is not started")
        return self._endpoint.path

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("the simulator is already running")
        self._endpoint.open()
        self._t0 = asyncio.get_running_loop().time()
        for bottle in self.bottles:
            bottle.loaded_at = self.start_time
            if self.report_loads:
                self._queue(bottle, "load")
        self._tasks = [
            asyncio.create_task(self._run_clock(), name="bactalert-sim clock"),
            asyncio.create_task(self._run_link(), name="bactalert-sim link"),
        ]
        if self._scenario:
            self._tasks.append(asyncio.create_task(run_scenario(self, self._scenario), name="bactalert-sim scenario"))
        self._log.info("simulator started", serial_path=self.serial_path, bottles=len(self.bottles))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        try:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise asyncio.CancelledError
            for result in results:
                if isinstance(result, Exception):
                    raise result
        finally:
            self._endpoint.close()

    # -- faults ---------------------------------------------------------------------------------------
    def inject(self, fault: str, *, unit_id: int | None = None, **params: float) -> None:
        """Start a fault (see FAULTS); unknown faults and parameters are a ValueError."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; faults: {', '.join(FAULTS)}")
        unknown = set(params) - set(FAULTS[fault])
        if unknown or unit_id is not None:
            raise ValueError(f"fault {fault!r} takes {', '.join(FAULTS[fault]) or 'no parameters'}")
        p = {**FAULTS[fault], **params}
        f = self.faults
        if fault == "corrupt_checksum":
            f.corrupt_checksum += int(p["count"])
        elif fault == "wrong_frame_number":
            f.wrong_frame_number += int(p["count"])
        elif fault == "no_ack":
            f.no_ack = True
        elif fault == "slow_sender":
            f.slow = (float(p["pause_s"]), int(p["at_frame"]))
        elif fault == "contention":
            f.contention = True
        elif fault == "line_drop":
            f.line_drop_at = int(p["at_frame"])
        elif fault == "oversize":
            f.oversize = int(p["chars"])
        elif fault == "long_record":
            f.long_record = int(p["chars"])
        elif fault == "duplicate_frame":
            f.duplicate_frame = True
        elif fault == "correct_result":
            self._correct(int(p["bottle"]), float(p["ttd_h"]))
        elif fault == "resend":
            self._resend(int(p["count"]))
        else:
            noise = bytes(self._rng.choice(b"\x00\x01\x7f\xff!#AZaz09|^&") for _ in range(int(p["bytes"])))
            self._garbage.append(noise)
        self._log.info("fault injected", fault=fault, **p)
        self._poke()

    async def restore(self) -> None:
        """Lift every fault; a dropped line comes back at the same path."""
        self.faults = Faults()
        if not self._endpoint.up:
            self._endpoint.reopen()
        self._log.info("link restored", serial_path=self.serial_path)
        self._poke()

    def state(self) -> SimState:
        c = self._counters
        bottles = {
            b.bottle_id: {"status": b.status, "ttd_h": b.ttd_reported_h, "readings": b.readings, "lot": b.lot,
                          "specimen_id": b.specimen_id, "corrections": b.corrections}
            for b in self.bottles
        }
        counts = {f.name: getattr(c, f.name) for f in fields(LinkCounts)}
        return SimState(self.sim_now(), bottles, len(self._outbox), self._endpoint.up, sent=tuple(c.sent), **counts)

    def sim_now(self) -> datetime:
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            return self.start_time
        return self.start_time + timedelta(seconds=(now - self._t0) * self.time_scale)

    # -- the bottles ----------------------------------------------------------------------------------
    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        step = READING_INTERVAL.total_seconds() / self.time_scale
        k = 0
        while any(b.status == "in_progress" for b in self.bottles):
            k += 1
            await asyncio.sleep(max(0.0, self._t0 + k * step - loop.time()))
            at = self.start_time + k * READING_INTERVAL
            for i, bottle in enumerate(self.bottles):
                if bottle.read(at) is not None:
                    self._queue(bottle, bottle.status, at)
                    if i in self.faults.corrections:
                        self._corrected(bottle, self.faults.corrections.pop(i))

    def _queue(self, bottle: Bottle, label: str, at: datetime | None = None, correcting: bool = False) -> None:
        records = astm.bottle_message(bottle, at or self.sim_now(), self.instrument_id, self.serial_number)
        records = astm.as_sent_before(records, self._results.setdefault(bottle.bottle_id, {}), correcting)
        bottle.reported.append(bottle.status)
        self._outbox.append(Outgoing(f"{bottle.bottle_id}:{label}", records))
        self._poke()

    def _correct(self, number: int, ttd_h: float) -> None:
        """Correct bottle ``number`` (1-based) now if its result went out, else right after it does."""
        if not 1 <= number <= len(self.bottles):
            raise ValueError(f"correct_result: bottle {number} is not one of the {len(self.bottles)} bottles")
        if ttd_h < 0:
            raise ValueError("correct_result: ttd_h must be >= 0 (0: one hour more than sent)")
        bottle = self.bottles[number - 1]
        if bottle.status == "in_progress":
            self.faults.corrections[number - 1] = ttd_h
        else:
            self._corrected(bottle, ttd_h)

    def _corrected(self, bottle: Bottle, ttd_h: float) -> None:
        """The instrument corrects a result it sent: positive at ``ttd_h`` (0: an hour later than sent, or 24 h)."""
        sent = bottle.ttd_reported_h
        bottle.correct(ttd_h or (sent + 1.0 if sent is not None else 24.0))
        self._queue(bottle, "correction", correcting=True)
        self._log.info("result corrected", bottle=bottle.bottle_id, ttd_h=bottle.ttd_reported_h)

    def _resend(self, count: int) -> None:
        """The last message that went through goes again now, byte for byte (or the next one, once it has)."""
        last = self._last_sent
        if last is None:
            self.faults.resend += count
            return
        for _ in range(count):
            self._outbox.appendleft(Outgoing(last.label.split(":")[0] + ":resend", list(last.records)))

    def _poke(self) -> None:
        self._wake.set()

    # -- the link -------------------------------------------------------------------------------------
    async def _run_link(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if not self._endpoint.up:  # the line is down until restore()
                await self._wake.wait()
                continue
            if self._endpoint.up and self._garbage:
                await self._endpoint.write(self._garbage.pop(0))
                continue
            if self._endpoint.up and self._endpoint.pending():
                if await self._endpoint.read_byte(0) == astm.ENQ:
                    await self._receive()
                continue
            if self._endpoint.up and self._outbox and loop.time() >= self._not_before:
                await self._send(self._outbox[0])
                continue
            timeout = max(0.0, self._not_before - loop.time()) if self._outbox else None
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _reply(self) -> int | None:
        """The gateway's answer to what we sent: ACK, NAK, EOT or ENQ; None after reply_s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reply_s
        while True:
            byte = await self._endpoint.read_byte(max(0.0, deadline - loop.time()))
            if byte is None or byte in (astm.ACK, astm.NAK, astm.EOT, astm.ENQ):
                return byte

    async def _send(self, out: Outgoing) -> None:
        """One attempt at a message; it leaves the queue only when it went through whole."""
        c, f, ep = self._counters, self.faults, self._endpoint
        loop = asyncio.get_running_loop()
        enquiries = 0
        while True:
            await ep.write(bytes((astm.ENQ,)))
            c.enq_sent += 1
            answer = await self._reply()
            if answer == astm.ACK:
                break
            if answer == astm.ENQ:  # the gateway's ENQ crossed ours: the instrument has priority
                c.contentions += 1
                await asyncio.sleep(self.contention_s)
                continue
            enquiries += 1
            if answer is None:
                c.timeouts += 1
                await ep.write(bytes((astm.EOT,)))
            if enquiries >= self.max_attempts or not ep.up:
                self._not_before = loop.time() + self.busy_retry_s
                return
            await asyncio.sleep(self.busy_retry_s)
        records, split = list(out.records), True
        if f.oversize or f.long_record:
            pad = "^NOTE^" + "x" * (f.oversize or f.long_record)
            records = [r.replace("|G", pad + "|G") if r.startswith("C|") else r for r in records]
            split, f.oversize, f.long_record = not f.oversize, 0, 0
        frames = astm.frames(records, split=split)
        drop_at, f.line_drop_at = f.line_drop_at, None
        slow, f.slow = f.slow, None
        duplicate, f.duplicate_frame = f.duplicate_frame, False
        i, attempts = 0, 0
        while i < len(frames):
            if drop_at is not None and i + 1 == drop_at:
                c.line_drops += 1
                ep.hangup()
                self._log.info("line dropped mid-message", message=out.label, frame=i + 1)
                return
            if slow is not None and i + 1 == slow[1]:
                await asyncio.sleep(slow[0])
                slow = None
            await ep.write(self._mangle(frames[i]))
            c.frames_sent += 1
            c.retransmissions += int(attempts > 0)
            attempts += 1
            answer = await self._reply()
            if answer == astm.ACK:
                if duplicate and i == 1:
                    duplicate = False
                    await ep.write(frames[i])  # as if our ACK had been lost: the gateway must discard it
                    c.frames_sent += 1
                    if await self._reply() != astm.ACK:
                        return await self._give_up(out, "the duplicate frame was not ACKed")
                i, attempts = i + 1, 0
                continue
            if answer == astm.NAK:
                c.naks += 1
                if attempts >= self.max_attempts:
                    c.aborts += 1
                    return await self._give_up(out, f"frame {i + 1} refused {attempts} times")
                continue
            if answer == astm.EOT:  # receiver interrupt: the frame counts as accepted; stop here
                c.interrupts += 1
                if i + 1 == len(frames):
                    break
                return await self._give_up(out, "receiver interrupt")
            c.timeouts += int(answer is None)
            return await self._give_up(out, "no answer to a frame")
        await ep.write(bytes((astm.EOT,)))
        self._outbox.popleft()
        c.messages_sent += 1
        c.sent.append(out.label)
        self._last_sent = out
        if f.resend:
            count, f.resend = f.resend, 0
            self._resend(count)

    async def _give_up(self, out: Outgoing, why: str) -> None:
        """Terminate (EOT); the message stays first in the queue and goes again after busy_retry_s."""
        await self._endpoint.write(bytes((astm.EOT,)))
        self._not_before = asyncio.get_running_loop().time() + self.busy_retry_s
        self._log.info("message not delivered; will send it again", message=out.label, why=why)

    def _mangle(self, raw: bytes) -> bytes:
        f = self.faults
        if f.corrupt_checksum > 0:
            f.corrupt_checksum -= 1
            wrong = format((int(raw[-4:-2], 16) + 1) % 256, "02X").encode()
            return raw[:-4] + wrong + raw[-2:]
        if f.wrong_frame_number > 0:
            f.wrong_frame_number -= 1
            return astm.frame(int(raw[1:2]) + 3, raw[2:-5], raw[-5] == astm.ETX)
        return raw

    async def _receive(self) -> None:
        """The gateway sent ENQ: receive its message (a query) unless a fault says otherwise."""
        c, f, ep = self._counters, self.faults, self._endpoint
        if f.no_ack:
            c.ignored_enqs += 1
            return
        if f.contention:  # our ENQ crosses the gateway's; we go first after our short wait
            f.contention = False
            c.contentions += 1
            await ep.write(bytes((astm.ENQ,)))
            if not self._outbox and self.bottles:
                self._queue(self.bottles[0], "status")
            self._not_before = asyncio.get_running_loop().time() + self.contention_s
            return
        await ep.write(bytes((astm.ACK,)))
        expected, text, records = 1, b"", []
        while True:
            raw = await self._read_frame()
            if raw is None:
                return  # receive timeout: what came is discarded
            if raw == bytes((astm.EOT,)):
                break
            if raw == bytes((astm.ENQ,)):
                await ep.write(bytes((astm.ACK,)))
                expected, text, records = 1, b"", []
                continue
            problem = astm.check_frame(raw, expected)
            if problem == "frame number" and astm.check_frame(raw, expected - 1) is None:
                await ep.write(bytes((astm.ACK,)))  # a duplicate: ACK and discard
                continue
            if problem is not None:
                await ep.write(bytes((astm.NAK,)))
                continue
            await ep.write(bytes((astm.ACK,)))
            expected += 1
            text += raw[2:-5]
            if raw[-5] == astm.ETX:
                records.append(text[:-1])
                text = b""
        if any(r.startswith(b"Q|") for r in records):
            c.queries += 1
            for bottle in self.bottles:
                self._queue(bottle, "query")

    async def _read_frame(self) -> bytes | None:
        buf = bytearray()
        while True:
            byte = await self._endpoint.read_byte(self.receive_s)
            if byte is None:
                return None
            if not buf:
                if byte in (astm.EOT, astm.ENQ):
                    return bytes((byte,))
                if byte == astm.STX:
                    buf.append(byte)
                continue
            buf.append(byte)
            if byte == astm.LF:
                return bytes(buf)

