"""Acceptance criteria, evaluated on what the case left behind: the journal, its audit trail, the MES.

Each criterion gives a verdict and one line saying what was expected and what was observed, in numbers
a reviewer can check against the journal themselves.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson

from gateway.journal import JournalReader, verify
from gateway.qualify.oq.protocol import Criterion
from gateway.qualify.oq.steps import Rig, StepFailed


@dataclass(frozen=True)
class Verdict:
    passed: bool
    expected: str
    observed: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}: expected {self.expected}; observed {self.observed}"


def _ranges(seqs: list[int], limit: int = 6) -> str:
    """``3, 7-9, 12`` for a reviewer; the first few runs only."""
    if not seqs:
        return "none"
    runs: list[tuple[int, int]] = []
    for s in sorted(seqs):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return shown + (f" and {len(runs) - limit} more run(s)" if len(runs) > limit else "")


def evaluate(criterion: Criterion, rig: Rig, records: list[dict[str, Any]], audit: list[dict[str, Any]]) -> Verdict:
    """One criterion against the case's final state."""
    if criterion.records is not None:
        want = criterion.records
        n = sum(1 for r in records if want.matches(r))
        filters = want.model_dump(exclude_none=True, exclude={"count", "min_count"})
        if want.count is not None:
            return Verdict(n == want.count, f"exactly {want.count} record(s) {filters}", f"{n}")
        return Verdict(n >= (want.min_count or 0), f"at least {want.min_count} record(s) {filters}", f"{n}")
    if criterion.no_records is not None:
        hits = [r for r in records if criterion.no_records.matches(r)]
        filters = criterion.no_records.model_dump(exclude_none=True)
        seen = f"{len(hits)}, first at seq {hits[0]['seq']}" if hits else "0"
        return Verdict(not hits, f"no record {filters}", seen)
    if criterion.no_gaps:
        seqs = [r["seq"] for r in records]
        last = seqs[-1] if seqs else 0
        missing = sorted(set(range(1, last + 1)) - set(seqs))
        repeated = len(seqs) - len(set(seqs))
        ok = not missing and not repeated and seqs == sorted(seqs) and last > 0
        return Verdict(ok, "committed seqs 1..last with no gap or repeat",
                       f"{len(seqs)} records, last seq {last}, missing {_ranges(missing)}, repeated {repeated}")
    if criterion.mes_received_exactly is not None:
        return _mes_exactly(rig, records)
    if criterion.verify is not None:
        report = verify(rig.journal_path)
        got = "ok" if report.ok else "broken"
        return Verdict(got == criterion.verify, f"journal verify {criterion.verify}", report.summary())
    if criterion.audit is not None:
        return _audit(criterion, audit)
    if criterion.refused is not None:
        want_r = criterion.refused
        got = rig.refusals.get(want_r.step)
        ok = got is not None and want_r.contains in got
        said = f" saying {want_r.contains!r}" if want_r.contains else ""
        return Verdict(ok, f"step {want_r.step} refused{said}", f"refused: {got}" if got is not None else
                       "NOT refused" if want_r.step in rig.refusals else "the step did not run")
    if criterion.in_order is not None:
        return _in_order(criterion, records)
    if criterion.none_between is not None:
        return _none_between(criterion, records)
    if criterion.sim_state is not None:
        check = criterion.sim_state
        try:
            value = rig.sim_number(check.sim, check.field)
        except StepFailed as exc:
            return Verdict(False, check.describe(), str(exc))
        return Verdict(check.holds(value), check.describe(), f"{value:g}")
    if criterion.threshold is not None:
        return _threshold(criterion, records)
    if criterion.repeats is not None:
        return _repeats(criterion, records)
    if criterion.files is not None:
        return _files(criterion, rig.work_dir)
    if criterion.restored_from is not None:
        return _restored_from(criterion, rig)
    if criterion.export_traceable is not None:
        return _export_traceable(criterion, rig.work_dir, records)
    if criterion.json_value is not None:
        return _json_value(criterion, rig.work_dir)
    if criterion.clock is not None:
        return _clock(criterion, records)
    if criterion.sample_spacing is not None:
        return _sample_spacing(criterion, records)
    if criterion.sim_count is not None:
        return _sim_count(criterion, rig, records)
    if criterion.values_in_order is not None:
        return _values_in_order(criterion, records)
    if criterion.mes_identical is not None:
        return _mes_identical(rig, records)
    if criterion.latency is not None:
        return _latency(criterion, rig, records)
    if criterion.resources is not None:
        return _resources(criterion, rig)
    assert criterion.min_committed is not None
    n = len(records)
    return Verdict(n >= criterion.min_committed, f"at least {criterion.min_committed} committed records", f"{n}")


def _audit(criterion: Criterion, audit: list[dict[str, Any]]) -> Verdict:
    want = criterion.audit
    assert want is not None
    hits = [e for e in audit if e.get("action") == want.action and (want.actor is None or e.get("actor") == want.actor)
            and all(k in (e.get("detail") or {}) for k in want.detail_keys)]
    what = want.action + (f" by {want.actor}" if want.actor else "") + (
        f" with {', '.join(want.detail_keys)} in its detail" if want.detail_keys else "")
    shown = f"{len(hits)}" + (f"; first: {_entry(hits[0])}" if hits else "")
    if want.count is not None:
        return Verdict(len(hits) == want.count, f"exactly {want.count} audit entr(y/ies) {what}", shown)
    least = want.min_count if want.min_count is not None else 1
    return Verdict(len(hits) >= least, f"at least {least} audit entr(y/ies) {what}", shown)


def _entry(entry: dict[str, Any]) -> str:
    """One audit entry as a reviewer reads it: who, what, why and the detail."""
    detail = entry.get("detail") or {}
    detail_text = ", ".join(f"{k}={v if not isinstance(v, dict | list) else '{...}'}"[:60] for k, v in detail.items()
                            ) if isinstance(detail, dict) else detail
    return (f"{entry.get('time', '')} {entry.get('actor') or 'system'}: {entry.get('action')} {entry.get('target', '')}"
            f" ({entry.get('reason') or 'no reason'}) [{detail_text}]")


def _in_order(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    """The first record matching the first filter, then the first after it matching the second, and so on."""
    want = criterion.in_order
    assert want is not None
    names = [" ".join(f"{k}={v}" for k, v in f.model_dump(exclude_none=True).items()) for f in want.records]
    found: list[int] = []
    after = 0
    for f in want.records:
        seq = next((r["seq"] for r in records if r["seq"] > after and f.matches(r)), None)
        if seq is None:
            break
        found.append(seq)
        after = seq
    shown = ", then ".join(f"{n} at seq {s}" for n, s in zip(names, found, strict=False))
    missing = f"; no {names[len(found)]} after that" if len(found) < len(names) else ""
    return Verdict(len(found) == len(names), "records in this order: " + " < ".join(names), (shown or "none") + missing)


def _none_between(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.none_between
    assert want is not None
    windows: list[tuple[int, int | None]] = []
    start: int | None = None
    for r in records:
        if start is None and want.after.matches(r):
            start = r["seq"]
        elif start is not None and want.until.matches(r):
            windows.append((start, r["seq"]))
            start = None
    if start is not None:
        windows.append((start, None))
    hits = [r["seq"] for r in records for a, b in windows if a < r["seq"] and (b is None or r["seq"] < b)
            and want.none.matches(r)]
    shown = ", ".join(f"{a}-{b if b is not None else 'end'}" for a, b in windows) or "none"
    expected = (f"no record {want.none.model_dump(exclude_none=True)} from {want.after.model_dump(exclude_none=True)}"
                f" until {want.until.model_dump(exclude_none=True)}")
    found = f"{len(hits)} such record(s)" + (f": {_ranges(hits)}" if hits else "")
    return Verdict(bool(windows) and not hits, expected, f"{len(windows)} window(s) (seqs {shown}); {found}")


def _mes_exactly(rig: Rig, records: list[dict[str, Any]]) -> Verdict:
    expected = "every committed record at the MES exactly once, in seq order, with its original hash and times"
    if rig.mes is None:
        return Verdict(False, expected, "the site has no MES stand-in named mes")
    got = rig.mes_sequences()
    committed = [r["seq"] for r in records]
    missing = sorted(set(committed) - set(got))
    extra = sorted(set(got) - set(committed))
    in_order = got == sorted(got)
    stored = {r["seq"]: r for r in rig.mes.records(rig.gateway_id)}
    by_seq = {r["seq"]: r for r in records}
    altered = [s for s, r in stored.items() if s in by_seq and r.get("hash") != by_seq[s]["hash"]]
    dupes = rig.mes.duplicates
    ok = not missing and not extra and in_order and not altered and bool(committed)
    observed = (f"{len(committed)} committed, {len(got)} stored at the MES ({dupes} duplicate copies answered"
                f" 'duplicate'), missing {_ranges(missing)}, not committed {_ranges(extra)},"
                f" {'in' if in_order else 'NOT in'} seq order, hash/time differences {_ranges(altered)}")
    return Verdict(ok, expected, observed)


def _threshold(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    """Redo the limit arithmetic on every sample and compare with the alarm records the gateway wrote.

    A value equal to a limit is within it; an alarm is written on each change of level, stamped with the
    sample's device time; a Bad value is never judged.
    """
    t = criterion.threshold
    assert t is not None
    mine = [r for r in records if r.get("equipment_id") == t.equipment and r.get("parameter") == t.parameter]
    samples = [r for r in mine if r.get("kind") != "alarm" and isinstance(r.get("value"), int | float)
               and not str(r.get("quality", "")).startswith("Bad")]
    level, expected = "normal", []
    for r in samples:
        now = "normal"
        if r["value"] > t.action:
            now = "action_limit_exceeded"
        elif t.alert is not None and r["value"] > t.alert:
            now = "alert_limit_exceeded"
        if now != level:
            expected.append((r.get("source_time") or r.get("gateway_time"), now))
            level = now
    actual = [(r.get("source_time") or r.get("gateway_time"), r.get("value")) for r in mine if r.get("kind") == "alarm"]
    above = [r["value"] for r in samples if r["value"] > t.action]
    within = [r["value"] for r in samples if r["value"] <= t.action]
    ok = expected == actual and len(above) >= t.min_each_side and len(within) >= t.min_each_side
    differ = next((f"first difference: expected {e}, got {a}" for e, a in zip(expected, actual, strict=False)
                   if e != a), "")
    return Verdict(
        ok,
        f"an alarm on {t.parameter} exactly at each change of level (action > {t.action:g}"
        f"{f', alert > {t.alert:g}' if t.alert is not None else ''}; equal is within), stamped with the device time;"
        f" at least {t.min_each_side} sample(s) each side of the action limit",
        f"{len(samples)} samples: {len(above)} above (lowest {min(above, default=None)}), {len(within)} within"
        f" (highest {max(within, default=None)}); {len(expected)} level change(s) computed, {len(actual)} alarm"
        f" record(s) {[v for _, v in actual][:6]} {differ}".rstrip(),
    )


def _repeats(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.repeats
    assert want is not None
    seen: dict[tuple[Any, ...], int] = {}
    repeats: list[tuple[int, int]] = []
    for r in records:
        if not want.matches(r) or not r.get("raw_sha256"):
            continue
        key = (r.get("equipment_id"), r.get("parameter"), orjson.dumps(r.get("value")), r["raw_sha256"])
        if key in seen:
            repeats.append((r["seq"], seen[key]))
        else:
            seen[key] = r["seq"]
    filters = want.model_dump(exclude_none=True, exclude={"count", "min_count"})
    pairs = ", ".join(f"seq {a} repeats seq {b}" for a, b in repeats[:6])
    shown = f"{len(repeats)}" + (f": {pairs}" if repeats else "")
    what = f"record(s) {filters} repeating an earlier one (same value and raw_sha256)"
    if want.count is not None:
        return Verdict(len(repeats) == want.count, f"exactly {want.count} {what}", shown)
    return Verdict(len(repeats) >= (want.min_count or 0), f"at least {want.min_count} {what}", shown)


def _files(criterion: Criterion, folder: Path) -> Verdict:
    want = criterion.files
    assert want is not None
    found = sorted(p.name for p in folder.glob(want.glob))
    shown = f"{len(found)}" + (f": {', '.join(found[:4])}" if found else "")
    if want.count is not None:
        return Verdict(len(found) == want.count, f"exactly {want.count} file(s) {want.glob}", shown)
    return Verdict(len(found) >= (want.min_count or 0), f"at least {want.min_count} file(s) {want.glob}", shown)


def _journal_contents(path: Path) -> tuple[list[tuple[int, str]], list[dict[str, Any]]]:
    with JournalReader(path) as reader:
        return [(seq, hash_) for seq, _, _, hash_ in reader.rows(raw=False)], list(reader.audit())  # type: ignore[arg-type]


def _restored_from(criterion: Criterion, rig: Rig) -> Verdict:
    """The journal against its backup, and the journal the restore set aside (what the backup did not hold)."""
    want = criterion.restored_from
    assert want is not None
    expected = (f"the journal equals the backup {want.file}: same records to the same head hash, the backup's audit"
                f" trail first (same hashes), then only {', '.join(want.then)}")
    backup = rig.work_dir / want.file
    if not backup.is_file():
        return Verdict(False, expected, f"no backup file {want.file} in the case folder")
    b_rows, b_audit = _journal_contents(backup)
    j_rows, j_audit = _journal_contents(rig.journal_path)
    b_head = b_rows[-1] if b_rows else (0, "")
    j_head = j_rows[-1] if j_rows else (0, "")
    same_records = j_rows == b_rows
    b_audit_ids = [(e.get("id"), e.get("hash")) for e in b_audit]
    prefix = [(e.get("id"), e.get("hash")) for e in j_audit[:len(b_audit)]] == b_audit_ids
    after = [str(e.get("action")) for e in j_audit[len(b_audit):]]
    ok = same_records and prefix and bool(after) and all(a in want.then for a in after)
    replaced = sorted(rig.journal_path.parent.glob(rig.journal_path.name + ".replaced-*"))
    kept = ""
    for path in replaced[:1]:
        r_rows, _ = _journal_contents(path)
        later = sum(1 for seq, _ in r_rows if seq > b_head[0])
        kept = f"; the journal set aside ({path.name}) holds {len(r_rows)} records, {later} after the backup's head"
    observed = (f"backup head seq {b_head[0]} {b_head[1][:16]}, journal head seq {j_head[0]} {j_head[1][:16]}"
                f" ({'same' if same_records else 'DIFFERENT'} records); backup audit entries {len(b_audit)}"
                f" {'identical' if prefix else 'NOT identical'} in the journal, then {after or 'nothing'}{kept}")
    return Verdict(ok, expected, observed)


def _export_traceable(criterion: Criterion, folder: Path, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.export_traceable
    assert want is not None
    expected = (f"every record of the export {want.file} with the journal's hash; every raw copy hashing to its"
                f" record's raw_sha256; at least {want.min_raw} raw copies{f' of lot {want.lot}' if want.lot else ''}")
    path = folder / want.file
    if not path.is_file():
        return Verdict(False, expected, f"no export file {want.file} in the case folder")
    journal = {r["seq"]: r["hash"] for r in records}
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    wrong_hash = [x["seq"] for x in lines if journal.get(x["seq"]) != x.get("hash")]
    missing = sorted(set(journal) - {x["seq"] for x in lines})
    raw_ok, raw_bad, no_digest = 0, [], []
    for x in lines:
        if x.get("raw_b64") is None:
            if x.get("raw_sha256") is not None:
                no_digest.append(x["seq"])
            continue
        if hashlib.sha256(base64.b64decode(x["raw_b64"])).hexdigest() != x.get("raw_sha256"):
            raw_bad.append(x["seq"])
        elif want.lot is None or x.get("lot_id") == want.lot:
            raw_ok += 1
    ok = not wrong_hash and not missing and not raw_bad and not no_digest and raw_ok >= want.min_raw
    observed = (f"{len(lines)} exported of {len(journal)} committed (not exported {_ranges(missing)}), hash"
                f" differences {_ranges(wrong_hash)}; {raw_ok} raw copies tracing to their records"
                f"{f' of lot {want.lot}' if want.lot else ''}, raw_sha256 mismatches {_ranges(raw_bad)},"
                f" raw missing where a digest is recorded {_ranges(no_digest)}")
    return Verdict(ok, expected, observed)


def _json_value(criterion: Criterion, folder: Path) -> Verdict:
    want = criterion.json_value
    assert want is not None
    expected = f"{want.path} = {want.equals!r} in {want.glob}"
    found = sorted(folder.glob(want.glob), key=lambda p: p.stat().st_mtime)
    if not found:
        return Verdict(False, expected, f"no file {want.glob} in the case folder")
    node: Any = orjson.loads(found[-1].read_bytes())
    for part in want.path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return Verdict(False, expected, f"{found[-1].name} has no {want.path}")
    return Verdict(node == want.equals, expected, f"{found[-1].name}: {want.path} = {node!r}")


def _stamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None


def _clock(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.clock
    assert want is not None
    mine = [r for r in records if r.get("equipment_id") == want.equipment
            and (want.parameter is None or r.get("parameter") == want.parameter)]
    offsets, both, recorded = [], 0, 0
    back_source, back_gateway = [], []
    last_source = last_gateway = None
    for r in mine:
        source, gateway = _stamp(r.get("source_time")), _stamp(r.get("gateway_time"))
        recorded += r.get("clock_offset_s") is not None
        if gateway is not None and last_gateway is not None and gateway < last_gateway:
            back_gateway.append(r["seq"])
        last_gateway = gateway or last_gateway
        if source is None or gateway is None:
            continue
        both += 1
        if last_source is not None and source < last_source:
            back_source.append(r["seq"])
        last_source = source
        offsets.append((source - gateway).total_seconds())
    within = [o for o in offsets if want.offset_min_s <= o <= want.offset_max_s]
    ok = len(within) >= want.min_count and not back_source and not back_gateway
    return Verdict(
        ok,
        f"{want.equipment}{' ' + want.parameter if want.parameter else ''}: device time - receive time within"
        f" {want.offset_min_s:g}..{want.offset_max_s:g} s on at least {want.min_count} record(s), both times kept,"
        " neither going backwards in seq order",
        f"{len(mine)} records, {both} with both times; {len(within)} within (offsets from"
        f" {min(offsets, default=0):.2f} to {max(offsets, default=0):.2f} s); device time backwards at seqs"
        f" {_ranges(back_source)}, receive time backwards at seqs {_ranges(back_gateway)};"
        f" clock_offset_s filled on {recorded}",
    )


def _sample_spacing(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.sample_spacing
    assert want is not None
    stamped = sorted(t for r in records if r.get("equipment_id") == want.equipment
                     and r.get("parameter") == want.parameter and str(r.get("quality", "")).startswith("Good")
                     and (t := _stamp(r.get("source_time"))) is not None)
    times = sorted(set(stamped))
    repeated = len(stamped) - len(times)
    steps = [(b - a).total_seconds() for a, b in pairwise(times)]
    widest = max(steps, default=0.0)
    ok = len(stamped) >= want.min_count and widest <= want.max_gap_s and not (want.unique and repeated)
    return Verdict(
        ok,
        f"{want.equipment} {want.parameter}: at least {want.min_count} Good samples with no step between device"
        f" sample times over {want.max_gap_s:g} s" + ("; no sample time twice" if want.unique else ""),
        f"{len(stamped)} samples at {len(times)} distinct device times over"
        f" {(times[-1] - times[0]).total_seconds() if times else 0:.1f} s, widest step {widest:.2f} s,"
        f" {repeated} sample time(s) seen again",
    )


def _sim_count(criterion: Criterion, rig: Rig, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.sim_count
    assert want is not None
    filters = want.records.model_dump(exclude_none=True)
    expected = (f"as many records {filters} as {want.sim} state {want.field}"
                + (f", give or take {want.tolerance}" if want.tolerance else ""))
    try:
        device = rig.sim_number(want.sim, want.field)
    except StepFailed as exc:
        return Verdict(False, expected, str(exc))
    n = sum(1 for r in records if want.records.matches(r))
    return Verdict(abs(n - device) <= want.tolerance, expected, f"{n} records; {want.sim} {want.field} = {device:g}")


def _values_in_order(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.values_in_order
    assert want is not None
    got = [r.get("value") for r in records if want.records.matches(r)]
    n = len(want.values)
    # type-exact: 1 is not 1.0 and 4294967295 is not 4294967295.0 (a count that went through a float)
    exact = [(v, type(v).__name__) for v in want.values]
    at = next((i for i in range(len(got) - n + 1)
               if [(v, type(v).__name__) for v in got[i:i + n]] == exact), None)
    filters = want.records.model_dump(exclude_none=True)
    shown = ", ".join(repr(v) for v in got[:40]) + (" ..." if len(got) > 40 else "")
    return Verdict(at is not None, f"records {filters} carry exactly {want.values!r} one after the other",
                   f"{len(got)} record(s): {shown}" + (f"; the run starts at the {at + 1}. record" if at is not None
                                                       else "; the run is not there"))


#: Keys on one side only by design: the journal reader's raw byte count, and the sink's delivery note on
#: the MES copy (how late it went; outside the record's hash).
_LOCAL_KEYS = frozenset({"raw_bytes", "delivery"})


def _mes_identical(rig: Rig, records: list[dict[str, Any]]) -> Verdict:
    expected = "each committed record's MES copy equal to the journal record, field by field"
    if rig.mes is None:
        return Verdict(False, expected, "the site has no MES stand-in named mes")
    stored = {r["seq"]: r for r in rig.mes.records(rig.gateway_id)}
    missing: list[int] = []
    differ: list[str] = []
    for r in records:
        copy = stored.get(r["seq"])
        if copy is None:
            missing.append(r["seq"])
            continue
        for key in sorted((set(r) | set(copy)) - _LOCAL_KEYS):
            if key in r and key in copy and (r[key] != copy[key] or type(r[key]) is not type(copy[key])):
                differ.append(f"seq {r['seq']} {key}: journal {r[key]!r}, MES {copy[key]!r}")
            elif (key in r) != (key in copy) and (r.get(key) or copy.get(key)) is not None:
                differ.append(f"seq {r['seq']} {key}: only in the {'journal' if key in r else 'MES copy'}")
    ok = bool(records) and not missing and not differ
    return Verdict(ok, expected, f"{len(records)} committed, {len(stored)} at the MES, missing {_ranges(missing)},"
                   f" {len(differ)} difference(s)" + (f": {'; '.join(differ[:3])}" if differ else ""))


def _latency(criterion: Criterion, rig: Rig, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.latency
    assert want is not None
    lags = sorted(seen - _stamp(r["gateway_time"]).timestamp()  # type: ignore[union-attr]
                  for r in records if (seen := rig.mes_seen.get(r["seq"])) is not None)
    expected = f"commit to MES receipt p95 under {want.p95_max_s:g} s over at least {want.min_count} records"
    if not lags:
        return Verdict(False, expected, "no record was seen at the MES")
    p50, p95 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(0.95 * len(lags)))]
    return Verdict(len(lags) >= want.min_count and p95 < want.p95_max_s, expected,
                   f"{len(lags)} records: p50 {p50:.3f} s, p95 {p95:.3f} s, max {lags[-1]:.3f} s"
                   " (each an upper bound by the runner's look interval)")


def _resources(criterion: Criterion, rig: Rig) -> Verdict:
    want = criterion.resources
    assert want is not None
    use = rig.usage
    expected = (f"gateway CPU at most {want.cpu_fraction_max:.0%} of one core over its run and peak RSS at most"
                f" {want.peak_rss_mb_max:g} MB")
    if use is None:
        return Verdict(False, expected, "no measurement (the gateway did not run to a stop)")
    fraction = use.cpu_s / use.wall_s if use.wall_s > 0 else 0.0
    ok = fraction <= want.cpu_fraction_max and use.peak_rss_mb <= want.peak_rss_mb_max
    return Verdict(ok, expected, f"{use.cpu_s:.2f} s CPU over {use.wall_s:.1f} s ({fraction:.1%} of one core),"
                   f" peak RSS {use.peak_rss_mb:.1f} MB, measured {use.how}")
