"""One pass over the journal for a lot: its seqs, counts, process steps, device events, freezer runs,
excursions, cultures, alarms and exceptions, the communication events of its equipment, and the particle
counts of the rooms it was in while it was there. Read page by page; a record that cannot be read is named,
not skipped silently."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.identity import BINDING_PARAMETER, EXCEPTION_PARAMETER
from gateway.journal import JournalReader

_PAGE = 5000

COMMUNICATION = "communication"
DEVICE_EVENT = "device_event"
PARTICLE_PREFIX = "particle_concentration_"
FREEZER_EVENTS = ("profile_conformance", "profile_approval", "chamber_profile_deviation", "sample_exotherm",
                  "chamber_profile_deviation_c", "sample_rise_c")
FREEZER_CURVES = ("chamber_temperature", "sample_temperature")
CULTURE_PARAMETERS = ("specimen_id", "bottle_id", "bottle_type", "culture_status", "time_to_detection",
                      "culture_positive")
_EXCURSION_RAISED = ("above_limit", "below_limit")
_EXCURSION_FIGURES = ("_duration", "_min", "_max")


@dataclass
class Window:
    equipment_id: str
    start: datetime
    end: datetime | None  # None: still bound

    def covers(self, at: datetime, now: datetime) -> bool:
        return self.start <= at < (self.end or now)

    def overlaps(self, start: datetime, end: datetime | None, now: datetime) -> bool:
        return start < (self.end or now) and self.start < (end or now)


@dataclass
class Scan:
    """What one pass over the journal collected about the lot."""

    seq_runs: list[list[int]] = field(default_factory=list)  # the lot's seqs as [first, last] runs
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    equipment: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    last_step: dict[str, str | None] = field(default_factory=dict)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    freezer: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    curves: dict[str, dict[str, list[tuple[datetime, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    excursions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    cultures: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    communication: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    particles: dict[str, dict[str, list[tuple[datetime, float | None, str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    particle_alarms: list[dict[str, Any]] = field(default_factory=list)
    holes: list[tuple[int, int]] = field(default_factory=list)  # seqs missing between stored rows
    unreadable: list[str] = field(default_factory=list)
    spans: dict[str, list[datetime]] = field(default_factory=dict)  # first and last moment of each one's lot records

    def add_seq(self, seq: int) -> None:
        if self.seq_runs and self.seq_runs[-1][1] == seq - 1:
            self.seq_runs[-1][1] = seq
        else:
            self.seq_runs.append([seq, seq])

    def has_seq(self, seq: int) -> bool:
        return any(a <= seq <= b for a, b in self.seq_runs)

    @property
    def records(self) -> int:
        return sum(b - a + 1 for a, b in self.seq_runs)


def bound_record_seqs(audit: Iterable[dict[str, Any]], ids: set[str]) -> dict[str, int]:
    """The seq of each binding's ``bound`` record, as its audit entry names it."""
    out: dict[str, int] = {}
    for entry in audit:
        detail = entry.get("detail") or {}
        binding = detail.get("binding") if isinstance(detail, dict) else None
        if entry.get("action") == "binding.created" and isinstance(binding, dict) and binding.get("binding_id") in ids:
            seq = detail.get("first_seq")
            if isinstance(seq, int):
                out[binding["binding_id"]] = seq
    return out


def binding_areas(reader: JournalReader, lot_id: str) -> dict[str, str]:
    """The ISA-95 area of each piece of equipment the lot was bound to, from the binding records."""
    areas: dict[str, str] = {}
    for record in reader.events_of(BINDING_PARAMETER):
        if record.lot_id == lot_id and record.isa95 is not None:
            areas[record.equipment_id] = record.isa95.area
    return areas


def scan_journal(reader: JournalReader, lot_id: str, area_windows: Mapping[str, list[Window]], now: datetime) -> Scan:
    """One pass over every stored record, page by page, keeping only what concerns the lot."""
    scan = Scan()
    expected = reader.first_seq()
    since = expected - 1
    while True:
        page = list(reader.rows(since, _PAGE, raw=False))
        if not page:
            break
        for seq, payload, _, _ in page:
            if seq != expected:
                scan.holes.append((expected, seq - 1))
            expected, since = seq + 1, seq
            try:
                body = orjson.loads(payload)
                _take(scan, seq, body, lot_id, area_windows, now)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                scan.unreadable.append(f"seq {seq}: cannot be read as a record ({exc})")
    return scan


def _take(scan: Scan, seq: int, body: dict[str, Any], lot_id: str, area_windows: Mapping[str, list[Window]],
          now: datetime) -> None:
    equipment_id, parameter, kind, value = body["equipment_id"], body["parameter"], body["kind"], body.get("value")
    at = parse_time(body.get("source_time") or body["gateway_time"])
    area = (body.get("isa95") or {}).get("area")
    if parameter == COMMUNICATION:
        scan.communication[equipment_id].append(_row(seq, body, at))
    if parameter.startswith(PARTICLE_PREFIX) and area in area_windows and any(
        w.covers(at, now) for w in area_windows[area]
    ):
        scan.equipment.setdefault(equipment_id, _identity(body))
        if kind == "alarm":
            scan.particle_alarms.append(_row(seq, body, at) | {"room": area})
        else:
            number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
            scan.particles[equipment_id][parameter].append((at, number, body["quality"]))
    if body.get("lot_id") != lot_id:
        return
    scan.add_seq(seq)
    span = scan.spans.setdefault(equipment_id, [at, at])
    span[0], span[1] = min(span[0], at), max(span[1], at)
    scan.equipment.setdefault(equipment_id, _identity(body))
    scan.counts[equipment_id][parameter] += 1
    step = body.get("process_step")
    if step is not None and step != scan.last_step.get(equipment_id):  # a record without a step says nothing of it
        scan.last_step[equipment_id] = step
        scan.steps[equipment_id].append({"seq": seq, "time": iso(at), "process_step": step})
    if parameter == DEVICE_EVENT:
        scan.runs[equipment_id].append(_row(seq, body, at))
    if parameter in FREEZER_EVENTS:
        scan.freezer[equipment_id].append(_row(seq, body, at))
    if parameter in FREEZER_CURVES and isinstance(value, int | float) and not isinstance(value, bool):
        scan.curves[equipment_id][parameter].append((at, float(value)))
    if kind == "alarm" and value in _EXCURSION_RAISED:
        scan.excursions[equipment_id].append({"parameter": parameter, "raised": _row(seq, body, at), "ended": None})
    elif kind == "alarm" and value == "normal":
        for exc in reversed(scan.excursions.get(equipment_id, [])):
            if exc["parameter"] == parameter and exc["ended"] is None:
                exc["ended"] = _row(seq, body, at)
                break
    elif kind == "measurement" and parameter.endswith(_EXCURSION_FIGURES):
        base, _, figure = parameter.rpartition("_")
        for exc in reversed(scan.excursions.get(equipment_id, [])):
            if exc["parameter"] == base:
                exc[figure] = {"value": value, "unit": body.get("unit")}
                break
    if parameter in CULTURE_PARAMETERS:
        result = scan.cultures.setdefault((equipment_id, body["gateway_time"]), {
            "equipment_id": equipment_id, "time": iso(at), "first_seq": seq})
        result[parameter] = value
        if parameter == "time_to_detection":
            result["time_to_detection_unit"] = body.get("unit")
    if kind == "alarm":
        scan.alarms.append(_row(seq, body, at))
    if parameter == EXCEPTION_PARAMETER:
        scan.exceptions.append(_row(seq, body, at))


def _row(seq: int, body: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    return {"seq": seq, "time": iso(at), "equipment_id": body["equipment_id"], "parameter": body["parameter"],
            "kind": body["kind"], "value": body.get("value"), "unit": body.get("unit"), "quality": body["quality"],
            "process_step": body.get("process_step"), "detail": body.get("detail")}


def _identity(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"equipment_class": body.get("equipment_class"), "isa95": body.get("isa95")}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
