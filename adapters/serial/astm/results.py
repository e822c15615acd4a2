"""A message's items as readings, by the profile. Pure: no I/O, the gateway time is passed in.

Nothing is adjusted and nothing dropped: a number that is not one is kept as a Bad_DecodingError reading
that quotes the text, and a status the profile does not list is kept as sent and flagged. The lot a
result names goes on its batch; the core checks it against the lots bound to equipment. Each reading of
an R record carries its result key, and a correction (R.9 = C) the version it replaces (:mod:`.versions`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from adapters.serial.astm.link import LinkEvent
from adapters.serial.astm.message import Discarded, Message, Record, Rejected
from adapters.serial.astm.profile import AstmPoint, AstmProfile, Selector
from adapters.serial.astm.versions import ResultVersions, Seen, result_key
from gateway.records import Quality, RawReading, ReadingBatch

#: A decimal number: optional sign, digits with an optional point, optional exponent; ASCII digits only.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_TIME_FORMATS = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M", 8: "%Y%m%d"}
#: L.3 termination codes (E1394 §12).
TERMINATION = {
    "N": "normal", "T": "sender aborted", "R": "receiver requested abort", "E": "unknown system error",
    "Q": "error in last request for information", "I": "no information available from last query",
    "F": "last request for information processed",
}


@dataclass(frozen=True)
class Context:
    """What the decoder needs to know about the equipment entry."""

    equipment_id: str
    endpoint: str
    tz: tzinfo
    lot_pattern: re.Pattern[str] | None = None


def parse_device_time(text: str, tz: tzinfo) -> datetime:
    """YYYYMMDD[HHMM[SS]] on the device's clock, as an aware datetime; ValueError otherwise."""
    fmt = _TIME_FORMATS.get(len(text))
    if fmt is None or not text.isdigit():
        raise ValueError(f"{text!r} is not YYYYMMDD[HHMM[SS]]")
    return datetime.strptime(text, fmt).replace(tzinfo=tz)


def select(message: Message, sel: Selector, test_component: int) -> tuple[Record, str] | None:
    """The record and the text a selector points at; None when the message does not carry it."""
    for record in message.of_type(sel.record):
        if sel.test is not None and record.get(3, test_component) != sel.test:
            continue
        return record, pick(record, sel)
    return None


def pick(record: Record, sel: Selector) -> str:
    """The text a selector points at within one record ('' when absent)."""
    if sel.key is None:
        return record.get(sel.field, sel.component)
    comps = record.components(sel.field)
    for i, comp in enumerate(comps[:-1]):
        if comp == sel.key:
            return comps[i + 1]
    return ""


def message_batch(
    message: Message,
    profile: AstmProfile,
    ctx: Context,
    now: datetime,
    versions: ResultVersions | None = None,
    header_at: datetime | None = None,
) -> ReadingBatch:
    """One ReadingBatch for one complete message: its items, one ``message`` record, lot and flags.

    ``versions`` links each result to the versions received before (a fresh memory when None);
    ``header_at`` is when the header arrived (default ``now``), the moment H.14 is compared with.
    """
    header = message.header
    notes: list[str] = []
    source_time = offset = None
    if header.get(14):
        try:
            source_time = parse_device_time(header.get(14), ctx.tz)
        except ValueError as exc:
            notes.append(f"H.14 {exc}")
        else:  # a time without seconds (or a date) is too coarse to compare clocks with
            if len(header.get(14)) == 14:
                offset = round((source_time - (header_at or now)).total_seconds(), 3)
    results = _Results(message, profile, ctx, versions if versions is not None else ResultVersions(), now)
    readings: list[RawReading] = []
    for name, point in profile.points.items():
        if point.select is None:
            continue
        found = select(message, point.select, profile.test_component)
        if found is None or not found[1]:
            continue
        reading = _reading(name, point, *found, ctx, now, source_time)
        if found[0].type == "R":
            results.mark(reading, found[0], point.select)
        readings.append(reading)
    version = header.get(13)
    if version and version not in profile.accepted_versions:
        notes.append(f"version {version!r} is not one the profile lists")
    code = message.terminator.get(3) or "N"
    if code != "N":
        notes.append(f"terminated with code {code} ({TERMINATION.get(code, 'unknown code')})")
    if len(message.of_type("O")) > 1:
        notes.append(f"{len(message.of_type('O'))} order records; the profile reads the first")
    lot_id = _lot(message, profile, ctx)
    sender = "^".join(c for c in header.components(5) if c)
    summary = f"{len(message.records)} records from {sender or 'an unnamed sender'}"
    detail = "; ".join([summary, *notes])
    quality = Quality.UNCERTAIN if notes else Quality.GOOD
    frames = b"".join(message.frames)
    readings.insert(0, _built_in(ctx, "message", "received", now, detail, quality, frames, source_time))
    return ReadingBatch(ctx.equipment_id, readings, lot_id=lot_id, clock_offset_s=offset)


class _Results:
    """The R records of one message against the versions received before: key, link and a line for each."""

    def __init__(
        self, message: Message, profile: AstmProfile, ctx: Context, versions: ResultVersions, now: datetime
    ) -> None:
        self.profile, self.versions, self.now = profile, versions, now
        self.equipment_id = ctx.equipment_id
        sample = []
        for name in profile.key_points:
            spec = profile.points[name].select
            found = select(message, spec, profile.test_component) if spec is not None else None
            sample.append(found[1] if found else "")
        self.sample = sample
        self._seen: dict[int, tuple[str | None, Seen]] = {}

    def mark(self, reading: RawReading, record: Record, sel: Selector) -> None:
        """Put the result's key and link on a reading of ``record``, and say in its detail what it is."""
        key, seen = self._judge(record)
        reading.result_key, reading.corrects = key, seen.corrects
        line = self._line(record, sel, seen, key)
        if line:
            reading.detail = f"{reading.detail}; {line}" if reading.detail else line

    def _judge(self, record: Record) -> tuple[str | None, Seen]:
        """Once per R record, however many points it gives."""
        if id(record) not in self._seen:
            test = record.get(3, self.profile.test_component) or f"R{record.get(2)}"
            key = result_key(self.equipment_id, self.sample, test)
            correction = record.get(9) in self.profile.correction_statuses
            self._seen[id(record)] = key, self.versions.observe(key, record, correction, self.now)
        return self._seen[id(record)]

    @staticmethod
    def _line(record: Record, sel: Selector, seen: Seen, key: str | None) -> str | None:
        prev = seen.previous
        if seen.kind == "repeat":
            assert prev is not None
            what = "corrected result" if prev.corrects is not None else "result"
            return f"sent again: the same {what} as received {_utc(prev.received)}"
        if seen.kind != "correction":
            return None
        status = f"corrected result (R.9 = {record.get(9)})"
        if key is None:
            return f"{status} naming no specimen or bottle: the version it replaces cannot be identified"
        if prev is None:
            return f"{status} of a version this gateway has not received since it started (corrects: unknown)"
        old, new = pick(prev.record, sel), pick(record, sel)
        change = f"was {old!r}" if old != new else "this item unchanged"
        return f"{status} replacing the version received {_utc(prev.received)}: {change}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rejected_batch(outcome: Rejected | Discarded, ctx: Context, now: datetime) -> ReadingBatch:
    """A message that cannot be used, kept whole: the reason and every frame it had."""
    if isinstance(outcome, Rejected):
        value, quality, detail = "rejected", Quality.BAD_DECODING_ERROR, f"message rejected: {outcome.reason}"
    else:
        value, quality = "discarded", Quality.BAD_COMMUNICATION_ERROR
        detail = f"message discarded after {len(outcome.frames)} frames: {outcome.reason}"
    raw = b"".join(outcome.frames)
    return ReadingBatch(ctx.equipment_id, [_built_in(ctx, "message", value, now, detail, quality, raw, None)])


def link_batch(events: list[LinkEvent], ctx: Context, now: datetime) -> ReadingBatch:
    """Link events (NAKs sent, duplicates, noise, failed sends), one record each with its bytes."""
    return ReadingBatch(
        ctx.equipment_id,
        [_built_in(ctx, "link", e.name, now, e.detail, Quality.GOOD, e.raw, None) for e in events],
    )


def _reading(
    name: str, point: AstmPoint, record: Record, text: str, ctx: Context, now: datetime, source_time: datetime | None
) -> RawReading:
    sel = point.select
    assert sel is not None
    where = f"{record.type}.{sel.field}" + (f".{sel.component}" if sel.key is None and sel.component > 1 else "")
    source = f"{ctx.endpoint}/{record.type}{record.get(2) or ''}/{sel.field}"
    raw = b"".join(record.frames)
    value: str | float | None = text
    quality, detail = Quality.GOOD, None
    if point.type == "number":
        value = _number(text)
        if value is None:
            quality, detail = Quality.BAD_DECODING_ERROR, f"{where} {text!r} is not a number"
    elif point.type == "datetime":
        try:
            value = parse_device_time(text, ctx.tz).isoformat()
        except ValueError as exc:
            value, quality, detail = None, Quality.BAD_DECODING_ERROR, f"{where} {exc}"
    if record.type == "R" and point.pending_statuses and record.get(9) in point.pending_statuses:
        value = point.pending_value
    elif point.values is not None and isinstance(value, str):
        mapped = point.values.get(value)
        if mapped is None:
            quality, detail = Quality.UNCERTAIN, f"{where} {value!r} is not a value the profile knows"
        else:
            value = mapped
    return RawReading(ctx.equipment_id, name, source, value, now, quality, source_time, raw, detail)


def _number(text: str) -> float | None:
    """A decimal as E1394 writes one (sign, digits, point, exponent; spaces around it allowed), else None.

    Python's ``float`` would also take ``1_054.3``, ``nan``, ``inf`` and non-ASCII digits: text that is
    not a decimal is never read as one.
    """
    stripped = text.strip(" ")
    if not _DECIMAL.fullmatch(stripped):
        return None
    value = float(stripped)
    return value if math.isfinite(value) else None


def _built_in(
    ctx: Context,
    point: str,
    value: str,
    now: datetime,
    detail: str,
    quality: Quality,
    raw: bytes | None,
    source_time: datetime | None,
) -> RawReading:
    return RawReading(ctx.equipment_id, point, f"{ctx.endpoint}/{point}", value, now, quality, source_time, raw,
                      detail)


def _lot(message: Message, profile: AstmProfile, ctx: Context) -> str | None:
    """The lot the result names (from its specimen id or the profile's lot field), None when it names none.

    Whether that lot is bound to equipment is the core's chain-of-identity check, not the adapter's.
    """
    lot = ""
    if ctx.lot_pattern is not None and profile.specimen_point is not None:
        spec = profile.points[profile.specimen_point].select
        found = select(message, spec, profile.test_component) if spec is not None else None
        match = ctx.lot_pattern.search(found[1]) if found else None
        lot = match.group("lot") if match else ""
    elif profile.lot is not None:
        found = select(message, profile.lot, profile.test_component)
        lot = found[1] if found else ""
    return lot or None
