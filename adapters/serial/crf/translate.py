"""Freezer lines to readings, events and context, pure: what the adapter yields, testable without a line.

:class:`LineAssembler` cuts the byte stream into lines (bounded: an over-long run of bytes without a
line end is reported and dropped, never buffered without limit). :class:`Translator` turns each line
into the readings of the device map's points and the run events, and keeps what must carry across
lines: the run going on (its id, lot and sample count), the alarm bits last seen, and which queries
to send (the loaded profile is asked for again at every run start).

A line that breaks the protocol yields exactly one reading, ``line_error``, with the reason as value,
the ProtocolError quality, the raw line and a detail, and nothing else: no value is ever taken from a
corrupt line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from adapters.serial.crf.codec import (
    ALARM_BITS,
    KNOWN_ALARMS,
    MAX_LINE,
    PROBE_FAULTS,
    DeviceEvent,
    Identity,
    LineError,
    LoadedProfile,
    Message,
    Probe,
    Reply,
    RunEnd,
    RunIdle,
    RunStart,
    Sample,
    parse_line,
    query_profile,
)
from gateway.errors import ProtocolError
from gateway.records import Quality, RawReading

#: The quality a line that breaks the protocol is recorded with.
LINE_ERROR_QUALITY = Quality(ProtocolError.quality)


class LineAssembler:
    """Bytes in, complete lines out (CR LF stripped); over-long junk comes out as an error line."""

    def __init__(self, max_line: int = MAX_LINE + 8) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._overflow = 0

    def feed(self, data: bytes) -> list[bytes | LineError]:
        out: list[bytes | LineError] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._overflow:
                out.append(LineError("too_long", f"{self._overflow + len(line) + 1} bytes without a line end"))
                self._overflow = 0
                continue
            out.append(line[:-1] if line.endswith(b"\r") else line)
        if len(self._buffer) > self.max_line:
            self._overflow += len(self._buffer)
            self._buffer.clear()
        return out


@dataclass
class LineResult:
    """What one line means: readings, events, the run context, and queries the adapter should send."""

    readings: list[RawReading] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    lot_id: str | None = None
    process_step: str | None = None
    queries: list[bytes] = field(default_factory=list)
    message: Message | None = None
    #: A sample line's device time minus its receipt time: the freezer's clock compared with the gateway's.
    clock_offset_s: float | None = None


@dataclass
class _Run:
    run_id: str
    lot: str | None
    received: int = 0


class Translator:
    """One freezer's lines, in order. ``source_base`` is e.g. ``crf+serial:///dev/ttyUSB0``."""

    def __init__(self, equipment_id: str, source_base: str) -> None:
        self.equipment_id = equipment_id
        self.base = source_base
        self._alarms: int | None = None
        self._run: _Run | None = None

    @property
    def run_id(self) -> str | None:
        return self._run.run_id if self._run else None

    def line(self, line: bytes | LineError, now: datetime) -> LineResult:
        if isinstance(line, LineError):
            return self._error(line, b"", now)
        try:
            message = parse_line(line)
        except LineError as exc:
            return self._error(exc, line, now)
        result = self._message(message, line, now)
        result.message = message
        return result

    # -- per message -------------------------------------------------------------------------------
    def _message(self, m: Message, raw: bytes, now: datetime) -> LineResult:
        if isinstance(m, Sample):
            return self._sample(m, raw, now)
        if isinstance(m, Identity):
            r = self._result()
            for point, value in (("device_manufacturer", m.manufacturer), ("device_model", m.model),
                                 ("device_serial", m.serial), ("device_firmware", m.firmware)):
                r.readings.append(self._reading("ID", point, value, raw, now))
            return r
        if isinstance(m, LoadedProfile):
            r = self._result()
            if m.name is None:
                r.readings.append(self._reading("PRF", "profile_name", None, raw, now, Quality.BAD_CONFIGURATION_ERROR,
                                                "the freezer reports no profile loaded"))
                return r
            r.readings += [
                self._reading("PRF", "profile_name", m.name, raw, now),
                self._reading("PRF", "profile_version", m.version, raw, now),
                self._reading("PRF", "profile_steps", m.steps, raw, now),
                self._reading("PRF", "profile_checksum", m.checksum, raw, now),
            ]
            return r
        if isinstance(m, RunStart):
            return self._run_start(m, raw, now)
        if isinstance(m, RunEnd):
            return self._run_end(m, raw, now)
        if isinstance(m, RunIdle):
            r = self._result()
            if self._run is not None:  # a run we saw start ended while the line was down
                r.events.append(("run_ended", f"run {self._run.run_id}: the freezer is idle (the end was not seen)"))
                r.readings.append(self._reading("RUN", "run_state", "ended_unseen", raw, now))
                self._run = None
            else:
                r.readings.append(self._reading("RUN", "run_state", "idle", raw, now))
            return r
        if isinstance(m, DeviceEvent):
            r = self._result()
            r.events.append((m.code.lower(), f"{m.text} (device time {m.time.isoformat()})"))
            return r
        assert isinstance(m, Reply)
        r = self._result()
        if m.reason is not None:
            r.events.append(("command_refused", f"the freezer refused {m.command}: {m.reason}"))
        return r

    def _sample(self, s: Sample, raw: bytes, now: datetime) -> LineResult:
        r = self._result(step=s.step)
        t = s.time
        # A sample line goes out as the sample is taken (the protocol replays nothing), so its time is the
        # freezer's clock now: whole seconds, so the offset reads up to a second short.
        r.clock_offset_s = (t - now).total_seconds()
        if s.run_id is not None and (self._run is None or self._run.run_id != s.run_id):
            # a run we did not see start (connected mid-run, or its start line was lost): ask again
            r.events.append(("run_in_progress", f"run {s.run_id} already going when first seen (step {s.step})"))
            r.queries.append(query_profile())
            self._run = _Run(s.run_id, None)
            r.lot_id, r.process_step = None, f"{s.run_id}/{s.step}"
        if self._run is not None and s.run_id == self._run.run_id:
            self._run.received += 1
        add = r.readings.append
        add(self._reading("S", "profile_step", s.step, raw, now, source_time=t))
        add(self._reading("S", "step_type", s.step_type, raw, now, source_time=t))
        add(self._reading("S", "step_elapsed", s.step_elapsed_s, raw, now, source_time=t))
        add(self._reading("S", "set_point", s.set_point, raw, now, source_time=t))
        add(self._probe("chamber_temperature", s.chamber, raw, now, t))
        for i, probe in enumerate(s.probes):
            add(self._probe("sample_temperature" if i == 0 else f"sample_temperature_{i + 1}", probe, raw, now, t))
        add(self._reading("S", "ln2_valve_demand", s.valve_pct, raw, now, source_time=t))
        previous, self._alarms = self._alarms, s.alarms
        for point, bit in ALARM_BITS.items():
            if previous is None or (previous ^ s.alarms) & bit:
                add(self._reading("S", point, bool(s.alarms & bit), raw, now, source_time=t))
        unknown = s.alarms & ~KNOWN_ALARMS
        if unknown and (previous is None or (previous & ~KNOWN_ALARMS) != unknown):
            r.events.append(("unknown_alarm_bits", f"the freezer set alarm bits {unknown:04X} unknown to this gateway"))
        return r

    def _run_start(self, m: RunStart, raw: bytes, now: datetime) -> LineResult:
        known = self._run is not None and self._run.run_id == m.run_id
        if not known:
            self._run = _Run(m.run_id, m.lot)
        elif self._run is not None and m.lot is not None:
            self._run.lot = m.lot
        r = self._result(step=None)
        what = f"run {m.run_id} profile {m.profile} checksum {m.checksum} lot {m.lot or '-'}"
        if m.in_progress:
            if not known:
                r.events.append(("run_in_progress", f"{what}, started {m.time.isoformat()} (device time)"))
        else:
            r.events.append(("run_started", what))
            r.queries.append(query_profile())  # the loaded profile, asked for again at every run start
        t = m.time
        r.readings += [
            self._reading("RUN", "run_id", m.run_id, raw, now, source_time=t),
            self._reading("RUN", "profile_name", m.profile, raw, now, source_time=t),
            self._reading("RUN", "profile_checksum", m.checksum, raw, now, source_time=t),
        ]
        if m.lot is not None:
            r.readings.append(self._reading("RUN", "run_lot", m.lot, raw, now, source_time=t))
        r.readings.append(self._reading("RUN", "run_state", "running", raw, now, source_time=t))
        return r

    def _run_end(self, m: RunEnd, raw: bytes, now: datetime) -> LineResult:
        run = self._run if self._run is not None and self._run.run_id == m.run_id else None
        received = run.received if run is not None else None
        r = self._result(step=None)
        if run is not None:
            r.lot_id = run.lot
        r.process_step = m.run_id
        seen = f"{received} received" if received is not None else "its start was not seen here"
        r.events.append(("run_ended", f"run {m.run_id} {m.outcome}: {m.samples} samples ({seen})"))
        t = m.time
        r.readings.append(self._reading("RUN", "run_state", m.outcome, raw, now, source_time=t))
        r.readings.append(self._reading("RUN", "run_samples", m.samples, raw, now, source_time=t))
        if received is not None:
            detail = None if received == m.samples else f"the freezer sent {m.samples}; {m.samples - received} missing"
            quality = Quality.GOOD if received == m.samples else Quality.UNCERTAIN_SUB_NORMAL
            r.readings.append(self._reading("RUN", "run_samples_received", received, raw, now, quality, detail,
                                            source_time=t))
        if run is not None:
            self._run = None
        return r

    # -- helpers -----------------------------------------------------------------------------------
    def _result(self, step: int | None = None) -> LineResult:
        run = self._run
        if run is None:
            return LineResult()
        return LineResult(lot_id=run.lot, process_step=run.run_id if step is None else f"{run.run_id}/{step}")

    def _probe(self, point: str, probe: Probe, raw: bytes, now: datetime, t: datetime) -> RawReading:
        if probe.fault is None:
            return self._reading("S", point, probe.value, raw, now, source_time=t)
        return self._reading("S", point, None, raw, now, Quality.BAD_SENSOR_FAILURE,
                             f"the freezer reports {probe.fault}: {PROBE_FAULTS[probe.fault]}", source_time=t)

    def _reading(
        self,
        message: str,
        point: str,
        value: object,
        raw: bytes,
        now: datetime,
        quality: Quality = Quality.GOOD,
        detail: str | None = None,
        *,
        source_time: datetime | None = None,
    ) -> RawReading:
        return RawReading(self.equipment_id, point, f"{self.base}/{message}/{point}", value, now, quality,
                          source_time, raw, detail)

    def _error(self, exc: LineError, raw: bytes, now: datetime) -> LineResult:
        r = self._result()
        r.readings.append(self._reading("line", "line_error", exc.reason, raw, now, LINE_ERROR_QUALITY,
                                        f"line discarded: {exc.detail}"))
        return r


#: Every point a Translator can produce: the device map must give each a meaning.
POINTS: frozenset[str] = frozenset({
    "profile_step", "step_type", "step_elapsed", "set_point", "chamber_temperature", "sample_temperature",
    "sample_temperature_2", "ln2_valve_demand", *ALARM_BITS,
    "device_manufacturer", "device_model", "device_serial", "device_firmware",
    "profile_name", "profile_version", "profile_steps", "profile_checksum",
    "run_id", "run_lot", "run_state", "run_samples", "run_samples_received", "line_error",
})
