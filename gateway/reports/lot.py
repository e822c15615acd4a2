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

The pass over the journal is :mod:`gateway.reports.lot_scan`, the certificate
:mod:`gateway.reports.lot_certificate`; this module puts the report's sections together.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import LoadedSite
from gateway.errors import ConfigError, GatewayError
from gateway.identity import EXCEPTION_PARAMETER, Binding, BindingBook
from gateway.journal import JournalReader, Resolution, verify
from gateway.limits import resolve_limits
from gateway.particles import concentration_parameter
from gateway.qualify.evidence import (
    environment,
    software_manifest,
)
from gateway.records import utc_now
from gateway.reports.lot_certificate import SinkInfo, completeness_certificate
from gateway.reports.lot_scan import Scan, Window, binding_areas, bound_record_seqs, iso, scan_journal

_TICK = timedelta(microseconds=1)
X_LABEL = "minutes since the lot's first binding or record"
#: Plots keep at most this many points per curve (evenly thinned); the tables keep every figure.
_PLOT_POINTS = 1500
_RAISED_PARTICLE = ("alert_limit_exceeded", "action_limit_exceeded")


class UnknownLot(GatewayError):
    """The journal has never heard of the lot: no binding and no record carries it."""


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
        binding_seqs = bound_record_seqs(audit, {b.binding_id for b in bindings})
        areas = binding_areas(reader, lot_id)
        windows = [Window(b.equipment_id, b.valid_from, b.valid_to) for b in bindings]
        area_windows: dict[str, list[Window]] = defaultdict(list)
        for w in windows:
            if areas.get(w.equipment_id):
                area_windows[areas[w.equipment_id]].append(w)
        file_first, file_last = reader.first_seq(), reader.last_seq()
        scan = scan_journal(reader, lot_id, area_windows, now)
        if not bindings and scan.spans:  # a lot only devices reported: where and when its records were made
            windows = [Window(eq, a, b + _TICK) for eq, (a, b) in scan.spans.items()]
            for w in windows:
                area = (scan.equipment[w.equipment_id].get("isa95") or {}).get("area")
                if area:
                    area_windows[area].append(w)
            if area_windows:
                scan = scan_journal(reader, lot_id, area_windows, now)
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
    certificate = completeness_certificate(scan, binding_seqs, file_first, file_last, chain, sinks, cursors, dead,
                                           windows, area_windows, now)
    report: dict[str, Any] = {
        "report": "lot evidence pack",
        "lot_id": lot_id,
        "generated": iso(now),
        "gateway_id": gateway_id,
        "journal": str(path),
        "journal_seq_range": {"first": file_first, "last": file_last},
        "config": dict(config or {}),
        "software": _software(),
        "environment": environment(),
        "bindings": [_binding(b, binding_seqs.get(b.binding_id), areas.get(b.equipment_id)) for b in bindings],
        "windows": [{"equipment_id": w.equipment_id, "from": iso(w.start), "to": iso(w.end) if w.end else None,
                     "basis": "binding" if bindings else "records carrying the lot"} for w in windows],
        "equipment": _equipment(scan, bindings),
        "particle_exposure": _exposure(scan, area_windows, limits, bool(bindings)),
        "alarms": _with_resolutions(scan.alarms + scan.particle_alarms, resolutions),
        "exceptions": _with_resolutions(scan.exceptions, resolutions),
        "certificate": certificate,
    }
    report["summary"] = _summary(report)
    return report


# --- the sections -------------------------------------------------------------------------------------


def _binding(b: Binding, seq: int | None, area: str | None) -> dict[str, Any]:
    return {
        "binding_id": b.binding_id, "equipment_id": b.equipment_id, "area": area, "seq": seq,
        "valid_from": iso(b.valid_from), "valid_to": iso(b.valid_to) if b.valid_to else None,
        "performed_by": b.performed_by, "verified_by": b.verified_by, "reason": b.reason,
        "ended_by": b.ended_by, "end_verified_by": b.end_verified_by, "end_reason": b.end_reason,
        "coi_id": b.coi_id, "dins": list(b.dins), "process_step": b.process_step,
    }


def _equipment(scan: Scan, bindings: Sequence[Binding]) -> list[dict[str, Any]]:
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
            "freezer_curve": {name: [(iso(t), v) for t, v in _thin(points)] for name, points in curves.items()},
            "excursions": scan.excursions.get(eq, []),
            "cultures": sorted((c for (e, _), c in scan.cultures.items() if e == eq), key=lambda c: c["first_seq"]),
        })
    return out


def _exposure(scan: Scan, area_windows: Mapping[str, list[Window]], limits: Mapping[str, Mapping[str, Any]],
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
                "points": [(iso(t), v) for t, v, _ in _thin(samples)],
            }
        out.append({
            "room": area, "counter": eq, "limits_basis": counter_limits.get("basis"), "windows_basis": basis,
            "windows": [{"equipment_id": w.equipment_id, "from": iso(w.start),
                         "to": iso(w.end) if w.end else None} for w in area_windows.get(area, [])],
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




__all__ = ["SinkInfo", "UnknownLot", "build_lot_report", "report_for_site"]
