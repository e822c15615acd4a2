"""The VISA adapter: one SCPI instrument, checked at connect, scanned the way its instrument map says.

Lifecycle (see :mod:`gateway.adapter`)::

    async with VisaAdapter(equipment, instrument_map) as adapter:   # open, *IDN? check, on_connect
        async for batch in adapter.batches():                       # one batch per scan
            ...commit...

At connect the instrument must say who it is: ``*IDN?`` is compared with the entry's ``identity``
(21 CFR 11.10(h), device checks). Another instrument on that address is refused with an
:class:`IdentityMismatch` (quality ``Bad_ConfigurationError``); the supervisor journals it once and
keeps asking at its backoff, so the right instrument is accepted as soon as it is back.

After each scan the error queue (``SYST:ERR?``) is read until it says ``0,"No error"``: every error
becomes a device event and makes the scan's readings ``Bad_DeviceFailure`` (values kept, the errors in
the detail), because the instrument itself says something went wrong while it measured.

When the map has ``clock:``, the instrument's clock is read on the first scan after a connect and every
``every_n_scans`` after (date, time, date: three short queries) and compared with the gateway's; the
offset goes on every batch as ``clock_offset_s`` (see :mod:`adapters.visa.clock`).

A reply with the wrong field count may mean the session is out of step (a stray line end split a reply,
so every later query would read the previous one's leftover): what is pending is discarded before the
next query, and if anything was, the scan carries a ``reply_resynchronised`` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pyvisa.constants import Parity, StopBits

from adapters.visa.clock import ClockReplyError, clock_offset, local_moment, parse_date, parse_time
from adapters.visa.config import VisaEquipmentConfig
from adapters.visa.instrumentmap import InstrumentMap, ScanQuery
from adapters.visa.scpi import Identity, InstrumentError, parse_error, parse_identity, parse_number, split_fields
from adapters.visa.session import VisaSession
from gateway.adapter import PollingAdapter
from gateway.errors import CommunicationError, DeviceError, DeviceReportedError, ProtocolError
from gateway.records import Quality, RawReading, ReadingBatch, utc_now

_SERIAL_PARITY = {"none": Parity.none, "odd": Parity.odd, "even": Parity.even}
_STOP_BITS = {1: StopBits.one, 2: StopBits.two}
_SHOWN_ERRORS = 3
#: How long to wait for stray reply lines after a reply with the wrong field count (paid by a wrong map each scan).
STRAY_WAIT_S = 0.05


class IdentityMismatch(DeviceReportedError):
    """The instrument at the configured address is not the configured instrument: it is refused."""

    quality = "Bad_ConfigurationError"


class RejectedSetup(DeviceReportedError):
    """The instrument rejected a command of the map's ``on_connect``: the map does not fit it."""

    quality = "Bad_ConfigurationError"


@dataclass
class _Scan:
    readings: list[RawReading] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)


class VisaAdapter(PollingAdapter):
    """A polled SCPI instrument; every PyVISA call runs in the session's own thread."""

    def __init__(self, equipment: VisaEquipmentConfig, instrument_map: InstrumentMap) -> None:
        super().__init__(poll_interval_s=equipment.poll_interval_s, equipment_id=equipment.id)
        self.equipment = equipment
        self.map = instrument_map
        self.timeout_s = equipment.timeout_s or instrument_map.timeout_s
        self.sources = {
            name: f"visa://{equipment.resource}/@{point.channel}" for name, point in instrument_map.points.items()
        }
        self.identity: Identity | None = None
        self._session: VisaSession | None = None
        self._connect_events: list[tuple[str, str]] = []
        self._scans = 0
        #: Instrument clock minus gateway clock as last compared (None: no clock in the map, or not read yet).
        self.clock_offset_s: float | None = None
        self._clock_problem: str | None = None

    # -- PollingAdapter ------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the resource, check the identity, send the map's ``on_connect`` commands."""
        eq, m = self.equipment, self.map
        self._session = VisaSession(
            eq.resource,
            equipment_id=eq.id,
            timeout_s=self.timeout_s,
            read_termination=eq.read_termination or m.read_termination,
            write_termination=eq.write_termination or m.write_termination,
            serial=self._serial_options(),
        )
        await self._session.open()
        self.identity = await self._check_identity()
        for command in m.on_connect:
            await self._session.write(command)
        if m.on_connect:
            errors, problem = await self._read_errors()
            if errors or problem:
                listed = "; ".join(str(e) for e in errors) or problem
                raise RejectedSetup(
                    f"instrument rejected the map's on_connect commands {m.on_connect}: {listed}",
                    equipment_id=eq.id, address=eq.resource,
                )
        self._connect_events = [("identity_checked", f"*IDN? {self.identity}: the configured instrument")]
        self._scans = 0  # the first scan of a session reads the clock

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def read_once(self) -> ReadingBatch | None:
        """One scan now (commissioning: ``read-once``); a failure raises and keeps nothing."""
        scan, error = await self._scan()
        if error is not None:
            raise error
        return ReadingBatch(self.equipment.id, scan.readings, events=scan.events, clock_offset_s=self.clock_offset_s)

    async def poll(self) -> AsyncIterator[ReadingBatch]:
        """One scan. If the link fails half-way, what was read before is delivered, then the failure."""
        scan, error = await self._scan()
        if scan.readings or scan.events:
            yield ReadingBatch(self.equipment.id, scan.readings, events=scan.events,
                               clock_offset_s=self.clock_offset_s)
        if error is not None:
            raise error

    # -- the scan ------------------------------------------------------------------------------------
    async def _scan(self) -> tuple[_Scan, DeviceError | None]:
        scan = _Scan(events=self._connect_events)
        self._connect_events = []
        clock = self.map.clock
        due = clock is not None and self._scans % clock.every_n_scans == 0
        self._scans += 1
        try:
            for query in self.map.scan:
                raw = await self.session.query(query.query)
                readings, in_step = self._decode(query, raw)
                scan.readings += readings
                if not in_step:
                    scan.events += await self._resynchronise()
            if due:  # before the error queue, so an error the clock queries raise is read with this scan
                scan.events += await self._read_clock()
            errors, problem = await self._read_errors()
        except DeviceError as exc:
            return scan, exc
        if errors:
            scan.events += [("instrument_error", str(e)) for e in errors]
            self._flag(scan, Quality.BAD_DEVICE_FAILURE, f"instrument error queue after this scan: {_listed(errors)}")
        if problem:
            scan.events.append(("instrument_error_queue", problem))
            self._flag(scan, Quality.UNCERTAIN, f"the instrument's error queue could not be read: {problem}")
        return scan, None

    def _decode(self, query: ScanQuery, raw: bytes) -> tuple[list[RawReading], bool]:
        """One reading per point of the query, and whether the field count fit; if not, they are all Bad."""
        now = utc_now()
        eq_id = self.equipment.id
        text = raw.decode("ascii", errors="replace")
        fields = split_fields(text)
        if len(fields) != len(query.points):
            detail = (
                f"reply to {query.query!r} has {len(fields)} field(s), the map expects {len(query.points)}: "
                f"{_shown(text)!r}"
            )
            return [
                RawReading(eq_id, name, self.sources[name], None, now, Quality.BAD_DECODING_ERROR, raw=raw,
                           detail=detail)
                for name in query.points
            ], False
        readings = []
        for name, text_field in zip(query.points, fields, strict=True):
            number = parse_number(text_field)
            readings.append(RawReading(
                eq_id, name, self.sources[name], number.value, now, number.quality,
                raw=text_field.encode("ascii", errors="replace"), detail=number.detail,
            ))
        return readings, True

    async def _resynchronise(self) -> list[tuple[str, str]]:
        """Drop stray reply lines after a reply out of step, so the next query reads its own reply.

        A map that is simply wrong leaves nothing pending: no event, only the short wait.
        """
        dropped = await self.session.discard_pending(STRAY_WAIT_S)
        if not dropped.lines:
            return []
        return [("reply_resynchronised",
                 f"discarded {dropped.lines} stray reply line(s) ({dropped.size} bytes) after a reply out of step")]

    async def _read_clock(self) -> list[tuple[str, str]]:
        """Compare the instrument's clock with the gateway's; an event when its replies become unreadable."""
        clock = self.map.clock
        assert clock is not None
        session = self.session
        before = await session.query(clock.date_query)
        sent = utc_now()
        at = await session.query(clock.time_query)
        received = utc_now()
        after = await session.query(clock.date_query)
        reference = sent + (received - sent) / 2  # the time query was answered about half-way
        try:
            local = local_moment(parse_date(_ascii(before)), parse_time(_ascii(at)), parse_date(_ascii(after)))
            offset = clock_offset(local, self.equipment.zone, reference, self.clock_offset_s)
        except ClockReplyError as exc:
            problem = f"the instrument's clock could not be read ({clock.date_query} / {clock.time_query}): {exc}"
            known, self._clock_problem = self._clock_problem, problem
            return [] if problem == known else [("device_clock_unreadable", problem)]
        self._clock_problem = None
        self.clock_offset_s = offset
        return []

    async def _read_errors(self) -> tuple[list[InstrumentError], str | None]:
        """The error queue, oldest first, and a problem if it could not be emptied or read."""
        query = self.map.error_query
        if query is None:
            return [], None
        errors: list[InstrumentError] = []
        for _ in range(self.map.max_errors_per_scan):
            text = (await self.session.query(query)).decode("ascii", errors="replace")
            error = parse_error(text)
            if error is None:
                return errors, f"reply to {query!r} is not code,\"message\": {_shown(text)!r}"
            if not error.is_error:
                return errors, None
            errors.append(error)
        return errors, f"still not empty after {self.map.max_errors_per_scan} reads of {query!r}"

    @staticmethod
    def _flag(scan: _Scan, quality: Quality, detail: str) -> None:
        for reading in scan.readings:
            reading.quality = reading.quality.worst(quality)
            reading.detail = f"{reading.detail}; {detail}" if reading.detail else detail

    # -- connect helpers --------------------------------------------------------------------------------
    async def _check_identity(self) -> Identity:
        eq = self.equipment
        text = (await self.session.query(self.map.identity_query)).decode("ascii", errors="replace")
        identity = parse_identity(text)
        if identity is None:
            raise ProtocolError(
                f"reply to {self.map.identity_query!r} is not manufacturer,model,serial,firmware: {_shown(text)!r}",
                equipment_id=eq.id, address=eq.resource,
            )
        expected = eq.identity
        wrong = [
            f"{what} {actual!r} (expected {wanted!r})"
            for what, actual, wanted in (
                ("manufacturer", identity.manufacturer, expected.manufacturer),
                ("model", identity.model, expected.model),
                ("serial", identity.serial, expected.serial),
            )
            if wanted is not None and actual != wanted
        ]
        if wrong:
            raise IdentityMismatch(
                f"identity check failed, instrument refused: {', '.join(wrong)}; *IDN? said {str(identity)!r}",
                equipment_id=eq.id, address=eq.resource,
            )
        return identity

    def _serial_options(self) -> dict[str, object] | None:
        eq = self.equipment
        if not eq.is_serial:
            return None
        options: dict[str, object] = {}
        if eq.baud_rate is not None:
            options["baud_rate"] = eq.baud_rate
        if eq.data_bits is not None:
            options["data_bits"] = eq.data_bits
        if eq.parity is not None:
            options["parity"] = _SERIAL_PARITY[eq.parity]
        if eq.stop_bits is not None:
            options["stop_bits"] = _STOP_BITS[eq.stop_bits]
        return options

    @property
    def session(self) -> VisaSession:
        if self._session is None:
            raise CommunicationError("not connected", equipment_id=self.equipment.id, address=self.equipment.resource)
        return self._session


def _ascii(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace")


def _shown(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _listed(errors: list[InstrumentError]) -> str:
    shown = "; ".join(str(e) for e in errors[:_SHOWN_ERRORS])
    more = len(errors) - _SHOWN_ERRORS
    return f"{shown} and {more} more" if more > 0 else shown
