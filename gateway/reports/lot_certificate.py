"""The lot's data-completeness certificate: the seq range of its records, that the journal holds every seq
of it (a pruned or deleted range is named), that the hash chain verifies, and that every enabled sink has
taken the lot's last record with none of its records dead-lettered. Communication gaps of the lot's
equipment are listed with their causes and durations: recorded as data, they inform the review without
failing the certificate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.journal import DeadLetter
from gateway.reports.lot_scan import Scan, Window, parse_time
from gateway.sinks.forwarder import cursor_name


@dataclass(frozen=True, slots=True)
class SinkInfo:
    """A sink the site says delivers records: its name and whether it is enabled."""

    name: str
    enabled: bool = True


def completeness_certificate(
    scan: Scan,
    binding_seqs: Mapping[str, int],
    file_first: int,
    file_last: int,
    chain: Any,
    sinks: Sequence[SinkInfo],
    cursors: Mapping[str, int],
    dead: Sequence[DeadLetter],
    windows: Sequence[Window],
    area_windows: Mapping[str, list[Window]],
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


def _gaps(scan: Scan, windows: Sequence[Window], area_windows: Mapping[str, list[Window]],
          now: datetime) -> list[dict[str, Any]]:
    """Communication lost/refused → restored of the lot's equipment and room counters, overlapping the bindings."""
    by_equipment: dict[str, list[Window]] = defaultdict(list)
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
