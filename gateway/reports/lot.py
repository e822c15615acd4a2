"""The per-lot evidence pack: everything the journal says happened to one lot, and whether it says all of it.

Built from the journal file alone (a running gateway is not needed): the lot's bindings come from the
audit trail, its records are those carrying its ``lot_id``, and the rooms it passed through are the
ISA-95 areas of the equipment it was bound to. The site file only adds what the journal does not keep:
the sinks that should have delivered the records and the particle limits to draw on the plots.

The **data-completeness certificate** is what lets a QA reviewer sign: the seq range of the lot's
records, that the journal holds every seq of it (a pruned or deleted range is named), that the hash
chain verifies, and that every enabled sink has taken the lot's last record with none of its records
dead-lettered. Communication gaps of the lot's equipment are listed with their causes and durations:
they are recorded as data (bad-quality records), so they inform the review without failing the
certificate. The report is a dict (JSON for the MES) and one self-contained, printable HTML page.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gateway.config import LoadedSite
from gateway.errors import ConfigError, GatewayError
from gateway.identity import BINDING_PARAMETER, EXCEPTION_PARAMETER, Binding, BindingBook
from gateway.journal import DeadLetter, JournalReader, Resolution, verify
from gateway.limits import resolve_limits
from gateway.particles import concentration_parameter
from gateway.qualify.evidence import (
    environment,
    software_manifest,
)
from gateway.records import utc_now
from gateway.sinks.forwarder import cursor_name

_PAGE = 5000
_TICK = timedelta(microseconds=1)
X_LABEL = "minutes since the lot's first binding or record"
#: Plots keep at most this many points per curve (evenly thinned); the tables keep every figure.
_PLOT_POINTS = 1500

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
_RAISED_PARTICLE = ("alert_limit_exceeded", "action_limit_exceeded")


class UnknownLot(GatewayError):
    """The journal has never heard of the lot: no binding and no record carries it."""


@dataclass(frozen=True, slots=True)
class SinkInfo:
    """A sink the site says delivers records: its name and whether it is enabled."""

    name: str
    enabled: bool = True


@dataclass
class _Window:
    equipment_id: str
    start: datetime
    end: datetime | None  # None: still bound

    def covers(self, at: datetime, now: datetime) -> bool:
        return self.start <= at < (self.end or now)

    def overlaps(self, start: datetime, end: datetime | None, now: datetime) -> bool:
        return start < (self.end or now) and self.start < (end or now)


@dataclass
class _Scan:
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


# --- building -----------------------------------------------------------------------------------------


def report_for_site(loaded: LoadedSite, lot_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The evidence pack of ``lot_id`` from the site's journal, with its sinks and particle limits."""
    site = loaded.site
    path = Path(site.journal.path)
    if not path.exists():
        raise GatewayError(f"no journal at {path} (run the gateway first, or check the path)")
    limits: dict[str, dict[str, Any]] = {}
    for eq in loaded.equipment:
        if eq.particle_limits is None or eq.id not in loaded.limit_tables:
            continue
        try:
            resolved = resolve_limits(eq.particle_limits, loaded.limit_tables[eq.id], loaded.maps[eq.id])
        except ConfigError:
            continue  # check-config names it; the report still shows the counts
        limits[eq.id] = {"basis": resolved.basis, "sizes": {
            concentration_parameter(s.size_um): {"alert": s.alert, "action": s.action}
            for s in resolved.by_size.values()
        }}
    return build_lot_report(
        path, lot_id, sinks=[SinkInfo(s.name, bool(getattr(s, "enabled", True))) for s in site.sinks],
        particle_limits=limits, config={"path": str(loaded.path), "hash": loaded.config_hash}, now=now,
    )


def build_lot_report(
    journal_path: str | os.PathLike[str],
    lot_id: str,
    *,
    sinks: Sequence[SinkInfo] = (),
    particle_limits: Mapping[str, Mapping[str, Any]] | None = None,
    config: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the journal holds about ``lot_id``, with the completeness certificate; UnknownLot if nothing.

    ``particle_limits`` maps a counter's equipment id to ``{"basis": str, "sizes": {parameter: {"alert",
    "action"}}}`` (what :func:`report_for_site` reads from the site file).
    """
    now = now or utc_now()
    path = Path(journal_path)
    limits = particle_limits or {}
    with JournalReader(path) as reader:
        audit = reader.audit()
        book = BindingBook.from_audit(audit)
        bindings = [b for b in book.all() if b.lot_id == lot_id]
        binding_seqs = _binding_seqs(audit, {b.binding_id for b in bindings})
        areas = _binding_areas(reader, lot_id)
        windows = [_Window(b.equipment_id, b.valid_from, b.valid_to) for b in bindings]
        area_windows: dict[str, list[_Window]] = defaultdict(list)
        for w in windows:
            if areas.get(w.equipment_id):
                area_windows[areas[w.equipment_id]].append(w)
        file_first, file_last = reader.first_seq(), reader.last_seq()
        scan = _scan(reader, lot_id, area_windows, now)
        if not bindings and scan.spans:  # a lot only devices reported: where and when its records were made
            windows = [_Window(eq, a, b + _TICK) for eq, (a, b) in scan.spans.items()]
            for w in windows:
                area = (scan.equipment[w.equipment_id].get("isa95") or {}).get("area")
                if area:
                    area_windows[area].append(w)
            if area_windows:
                scan = _scan(reader, lot_id, area_windows, now)
        resolutions = reader.resolutions()
        cursors = reader.cursors()
        dead = reader.dead_letters()
        gateway_id = reader.gateway_id
    if not bindings and not scan.seq_runs:
        known = sorted({b.lot_id for b in book.all()})
        shown = ", ".join(known[:10]) + (" …" if len(known) > 10 else "") if known else "none"
        raise UnknownLot(f"lot {lot_id!r} is not in journal {path}: never bound, and no record carries it "
                         f"(bound lots: {shown})")
    chain = verify(path)
    certificate = _certificate(scan, binding_seqs, file_first, file_last, chain, sinks, cursors, dead, windows,
                               area_windows, now)
    report: dict[str, Any] = {
        "report": "lot evidence pack",
        "lot_id": lot_id,
        "generated": _iso(now),
        "gateway_id": gateway_id,
        "journal": str(path),
        "journal_seq_range": {"first": file_first, "last": file_last},
        "config": dict(config or {}),
        "software": _software(),
        "environment": environment(),
        "bindings": [_binding(b, binding_seqs.get(b.binding_id), areas.get(b.equipment_id)) for b in bindings],
        "windows": [{"equipment_id": w.equipment_id, "from": _iso(w.start), "to": _iso(w.end) if w.end else None,
                     "basis": "binding" if bindings else "records carrying the lot"} for w in windows],
        "equipment": _equipment(scan, bindings),
        "particle_exposure": _exposure(scan, area_windows, limits, bool(bindings)),
        "alarms": _with_resolutions(scan.alarms + scan.particle_alarms, resolutions),
        "exceptions": _with_resolutions(scan.exceptions, resolutions),
        "certificate": certificate,
    }
    report["summary"] = _summary(report)
    return report


def _binding_seqs(audit: Iterable[dict[str, Any]], ids: set[str]) -> dict[str, int]:
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


def _binding_areas(reader: JournalReader, lot_id: str) -> dict[str, str]:
    """The ISA-95 area of each piece of equipment the lot was bound to, from the binding records."""
    areas: dict[str, str] = {}
    for record in reader.of_parameter(BINDING_PARAMETER):
        if record.lot_id == lot_id and record.isa95 is not None:
            areas[record.equipment_id] = record.isa95.area
    return areas


def _scan(reader: JournalReader, lot_id: str, area_windows: Mapping[str, list[_Window]], now: datetime) -> _Scan:
    """One pass over every stored record, page by page, keeping only what concerns the lot."""
    scan = _Scan()
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


def _take(scan: _Scan, seq: int, body: dict[str, Any], lot_id: str, area_windows: Mapping[str, list[_Window]],
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
        scan.steps[equipment_id].append({"seq": seq, "time": _iso(at), "process_step": step})
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
            "equipment_id": equipment_id, "time": _iso(at), "first_seq": seq})
        result[parameter] = value
        if parameter == "time_to_detection":
            result["time_to_detection_unit"] = body.get("unit")
    if kind == "alarm":
        scan.alarms.append(_row(seq, body, at))
    if parameter == EXCEPTION_PARAMETER:
        scan.exceptions.append(_row(seq, body, at))


def _row(seq: int, body: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    return {"seq": seq, "time": _iso(at), "equipment_id": body["equipment_id"], "parameter": body["parameter"],
            "kind": body["kind"], "value": body.get("value"), "unit": body.get("unit"), "quality": body["quality"],
            "process_step": body.get("process_step"), "detail": body.get("detail")}


def _identity(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"equipment_class": body.get("equipment_class"), "isa95": body.get("isa95")}


# --- the certificate ----------------------------------------------------------------------------------


def _certificate(
    scan: _Scan,
    binding_seqs: Mapping[str, int],
    file_first: int,
    file_last: int,
    chain: Any,
    sinks: Sequence[SinkInfo],
    cursors: Mapping[str, int],
    dead: Sequence[DeadLetter],
    windows: Sequence[_Window],
    area_windows: Mapping[str, list[_Window]],
    now: datetime,
) -> dict[str, Any]:
    problems: list[str] = []
    starts = [r[0] for r in scan.seq_runs] + list(binding_seqs.values())
    first = min(starts) if starts else None
    last = scan.seq_runs[-1][1] if scan.seq_runs else None
    missing: list[dict[str, Any]] = []
    if first is not None and last is not None:
        if file_first > first:
            through = min(file_first - 1, last)
            missing.append({"from": first, "to": through, "cause": "pruned under retention"})
            problems.append(f"seqs {first} to {through} of the lot's range were pruned under retention: "
                            "this journal no longer holds them")
        for a, b in scan.holes:
            lo, hi = max(a, first), min(b, last)
            if lo <= hi:
                missing.append({"from": lo, "to": hi, "cause": "deleted: not a retention prune"})
                problems.append(f"seqs {lo} to {hi} are missing from the journal inside the lot's range")
    problems += scan.unreadable
    if not chain.ok:
        problems.append(f"hash chain broken: {chain.summary()}")
    delivery = []
    for sink in sinks:
        cursor = cursors.get(cursor_name(sink.name), 0)
        letters = [{"seq": d.seq, "reason": d.reason, "time": d.time} for d in dead
                   if d.sink == cursor_name(sink.name) and scan.has_seq(d.seq)]
        delivered = last is None or cursor >= last
        entry = {"sink": sink.name, "enabled": sink.enabled, "cursor": cursor, "lot_last_seq": last,
                 "delivered": delivered and not letters, "dead_letters": letters}
        if not sink.enabled:
            entry["note"] = "disabled in the site file: not judged"
        elif not delivered:
            behind = last - cursor if last is not None else 0
            problems.append(f"sink {sink.name}: has taken records up to seq {cursor}, the lot's last is {last} "
                            f"({behind} records of the range not yet delivered)")
        if sink.enabled and letters:
            problems.append(f"sink {sink.name}: {len(letters)} of the lot's records were refused for good "
                            f"(dead letters: seqs {', '.join(str(d['seq']) for d in letters[:10])})")
        delivery.append(entry)
    notes = list(chain.notes)
    if not sinks:
        notes.append("the site file names no sinks: delivery is not judged")
    return {
        "ok": not problems,
        "verdict": "COMPLETE" if not problems else "PROBLEM",
        "problems": problems,
        "seq_range": {"first": first, "last": last},
        "records": scan.records,
        "gap_free": not missing,
        "missing": missing,
        "journal": {"first_seq": file_first, "last_seq": file_last},
        "chain": {"ok": chain.ok, "summary": chain.summary(), "first_bad_seq": chain.first_bad_seq,
                  "reason": chain.reason, "last_seq": chain.last_seq, "head_hash": chain.head_hash},
        "delivery": delivery,
        "communication_gaps": _gaps(scan, windows, area_windows, now),
        "notes": notes,
    }


def _gaps(scan: _Scan, windows: Sequence[_Window], area_windows: Mapping[str, list[_Window]],
          now: datetime) -> list[dict[str, Any]]:
    """Communication lost/refused → restored of the lot's equipment and room counters, overlapping the bindings."""
    by_equipment: dict[str, list[_Window]] = defaultdict(list)
    for w in windows:
        by_equipment[w.equipment_id].append(w)
    for eq in scan.particles:
        area = (scan.equipment.get(eq, {}).get("isa95") or {}).get("area")
        by_equipment[eq] += area_windows.get(area, [])
    for eq in scan.equipment:
        by_equipment.setdefault(eq, list(windows))  # equipment whose records carry the lot without a binding
    gaps: list[dict[str, Any]] = []
    for eq, events in scan.communication.items():
        relevant = by_equipment.get(eq)
        if not relevant:
            continue
        open_: dict[str, Any] | None = None
        pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for event in events:
            if event["value"] in ("lost", "refused") and open_ is None:
                open_ = event
            elif event["value"] == "restored" and open_ is not None:
                pairs.append((open_, event))
                open_ = None
        if open_ is not None:
            pairs.append((open_, None))
        for lost, restored in pairs:
            start = parse_time(lost["time"])
            end = parse_time(restored["time"]) if restored else None
            if not any(w.overlaps(start, end, now) for w in relevant):
                continue
            gaps.append({
                "equipment_id": eq, "lost": lost["time"], "lost_seq": lost["seq"], "how": lost["value"],
                "quality": lost["quality"], "cause": lost["detail"],
                "restored": restored["time"] if restored else None,
                "restored_seq": restored["seq"] if restored else None,
                "duration_s": round((end - start).total_seconds(), 3) if end else None,
                "still_open": restored is None,
            })
    return sorted(gaps, key=lambda g: g["lost_seq"])


# --- the sections -------------------------------------------------------------------------------------


def _binding(b: Binding, seq: int | None, area: str | None) -> dict[str, Any]:
    return {
        "binding_id": b.binding_id, "equipment_id": b.equipment_id, "area": area, "seq": seq,
        "valid_from": _iso(b.valid_from), "valid_to": _iso(b.valid_to) if b.valid_to else None,
        "performed_by": b.performed_by, "verified_by": b.verified_by, "reason": b.reason,
        "ended_by": b.ended_by, "end_verified_by": b.end_verified_by, "end_reason": b.end_reason,
        "coi_id": b.coi_id, "dins": list(b.dins), "process_step": b.process_step,
    }


def _equipment(scan: _Scan, bindings: Sequence[Binding]) -> list[dict[str, Any]]:
    bound: dict[str, list[str]] = {b.equipment_id: [] for b in bindings}
    for b in bindings:
        bound[b.equipment_id].append(b.binding_id)
    out = []
    for eq in list(bound) + sorted(e for e in scan.counts if e not in bound):
        info = scan.equipment.get(eq, {})
        curves = scan.curves.get(eq, {})
        out.append({
            "equipment_id": eq,
            "equipment_class": info.get("equipment_class"),
            "isa95": info.get("isa95"),
            "bindings": bound.get(eq, []),
            "records": sum(scan.counts[eq].values()),
            "by_parameter": dict(sorted(scan.counts[eq].items())),
            "process_steps": scan.steps.get(eq, []),
            "device_events": scan.runs.get(eq, []),
            "freezer": scan.freezer.get(eq, []),
            "freezer_curve": {name: [(_iso(t), v) for t, v in _thin(points)] for name, points in curves.items()},
            "excursions": scan.excursions.get(eq, []),
            "cultures": sorted((c for (e, _), c in scan.cultures.items() if e == eq), key=lambda c: c["first_seq"]),
        })
    return out


def _exposure(scan: _Scan, area_windows: Mapping[str, list[_Window]], limits: Mapping[str, Mapping[str, Any]],
              bindings: bool) -> list[dict[str, Any]]:
    """Per counter in a room the lot was in: per size, samples, max and mean, against the counter's limits."""
    out = []
    basis = "bound" if bindings else "its records were made"
    for eq in sorted(scan.particles):
        area = (scan.equipment[eq].get("isa95") or {}).get("area")
        counter_limits = limits.get(eq, {})
        sizes = {}
        for parameter, samples in sorted(scan.particles[eq].items()):
            values = [v for _, v, q in samples if v is not None and not q.startswith("Bad")]
            lim = (counter_limits.get("sizes") or {}).get(parameter, {})
            sizes[parameter] = {
                "samples": len(samples), "usable": len(values), "bad": len(samples) - len(values),
                "max": max(values) if values else None,
                "mean": round(sum(values) / len(values), 3) if values else None,
                "alert_limit": lim.get("alert"), "action_limit": lim.get("action"),
                "above_alert": sum(1 for v in values if lim.get("alert") is not None and v > lim["alert"]),
                "above_action": sum(1 for v in values if lim.get("action") is not None and v > lim["action"]),
                "points": [(_iso(t), v) for t, v, _ in _thin(samples)],
            }
        out.append({
            "room": area, "counter": eq, "limits_basis": counter_limits.get("basis"), "windows_basis": basis,
            "windows": [{"equipment_id": w.equipment_id, "from": _iso(w.start),
                         "to": _iso(w.end) if w.end else None} for w in area_windows.get(area, [])],
            "alarms_raised": sum(1 for a in scan.particle_alarms
                                 if a["equipment_id"] == eq and a["value"] in _RAISED_PARTICLE),
            "sizes": sizes,
        })
    return out


def _with_resolutions(rows: list[dict[str, Any]], resolutions: Mapping[int, Resolution]) -> list[dict[str, Any]]:
    out = []
    unique = {row["seq"]: row for row in rows}  # a counter's alarm may also carry the lot
    for row in sorted(unique.values(), key=lambda r: r["seq"]):
        res = resolutions.get(row["seq"])
        closes = row["parameter"] == EXCEPTION_PARAMETER or row["value"] not in ("normal", "conforming")
        out.append(row | {
            "needs_action": closes,
            "resolved": res is not None,
            "resolution": None if res is None else {"kind": res.kind, "by": res.actor, "time": res.time,
                                                    "reason": res.reason},
        })
    return out


def _summary(report: Mapping[str, Any]) -> dict[str, Any]:
    alarms = [a for a in report["alarms"] if a["needs_action"]]
    exceptions = report["exceptions"]
    cert = report["certificate"]
    return {
        "verdict": cert["verdict"],
        "bindings": len(report["bindings"]),
        "equipment": [e["equipment_id"] for e in report["equipment"]],
        "rooms": sorted({p["room"] for p in report["particle_exposure"] if p["room"]}),
        "records": cert["records"],
        "alarms_raised": len(alarms),
        "alarms_unacknowledged": sum(1 for a in alarms if not a["resolved"]),
        "exceptions": len(exceptions),
        "exceptions_open": sum(1 for e in exceptions if not e["resolved"]),
        "communication_gaps": len(cert["communication_gaps"]),
    }


def _software() -> dict[str, Any]:
    sw = software_manifest()
    return {"name": sw["name"], "version": sw["version"], "manifest_hash": sw["manifest_hash"],
            "file_count": sw["file_count"]}


def _thin(points: Sequence[Any]) -> Sequence[Any]:
    if len(points) <= _PLOT_POINTS:
        return points
    step = len(points) / _PLOT_POINTS
    return [points[int(i * step)] for i in range(_PLOT_POINTS)] + [points[-1]]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- writing ------------------------------------------------------------------------------------------

__all__ = ["SinkInfo", "UnknownLot", "build_lot_report", "report_for_site"]
