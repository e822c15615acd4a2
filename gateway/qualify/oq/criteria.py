"""Acceptance criteria, evaluated on what the case left behind: the journal, its audit trail, the MES.

Each criterion gives a verdict and one line saying what was expected and what was observed, in numbers
a reviewer can check against the journal themselves.
"""

from __future__ import annotations

from typing import Any

from gateway.journal import verify
from gateway.qualify.oq.acceptance import Criterion
from gateway.qualify.oq.file_checks import export_traceable, files, json_value, restored_from
from gateway.qualify.oq.record_checks import (
    clock,
    clock_offset,
    corrections,
    in_order,
    none_between,
    repeats,
    sample_spacing,
    threshold,
    values_in_order,
)
from gateway.qualify.oq.steps import Rig, StepFailed
from gateway.qualify.oq.verdict import Verdict, ranges, stamp

__all__ = ["Verdict", "evaluate"]


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
                       f"{len(seqs)} records, last seq {last}, missing {ranges(missing)}, repeated {repeated}")
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
        return in_order(criterion, records)
    if criterion.none_between is not None:
        return none_between(criterion, records)
    if criterion.sim_state is not None:
        check = criterion.sim_state
        try:
            value = rig.sim_number(check.sim, check.field)
        except StepFailed as exc:
            return Verdict(False, check.describe(), str(exc))
        return Verdict(check.holds(value), check.describe(), f"{value:g}")
    if criterion.threshold is not None:
        return threshold(criterion, records)
    if criterion.repeats is not None:
        return repeats(criterion, records)
    if criterion.files is not None:
        return files(criterion, rig.work_dir)
    if criterion.restored_from is not None:
        return restored_from(criterion, rig)
    if criterion.export_traceable is not None:
        return export_traceable(criterion, rig.work_dir, records)
    if criterion.json_value is not None:
        return json_value(criterion, rig.work_dir)
    if criterion.clock is not None:
        return clock(criterion, records)
    if criterion.clock_offset is not None:
        return clock_offset(criterion, records)
    if criterion.corrections is not None:
        return corrections(criterion, records)
    if criterion.sample_spacing is not None:
        return sample_spacing(criterion, records)
    if criterion.sim_count is not None:
        return _sim_count(criterion, rig, records)
    if criterion.values_in_order is not None:
        return values_in_order(criterion, records)
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
                f" 'duplicate'), missing {ranges(missing)}, not committed {ranges(extra)},"
                f" {'in' if in_order else 'NOT in'} seq order, hash/time differences {ranges(altered)}")
    return Verdict(ok, expected, observed)


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
    return Verdict(ok, expected, f"{len(records)} committed, {len(stored)} at the MES, missing {ranges(missing)},"
                   f" {len(differ)} difference(s)" + (f": {'; '.join(differ[:3])}" if differ else ""))


def _latency(criterion: Criterion, rig: Rig, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.latency
    assert want is not None
    lags = sorted(seen - stamp(r["gateway_time"]).timestamp()  # type: ignore[union-attr]
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
