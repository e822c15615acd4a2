"""Acceptance criteria, evaluated on what the case left behind: the journal, its audit trail, the MES.

Each criterion gives a verdict and one line saying what was expected and what was observed, in numbers
a reviewer can check against the journal themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.journal import verify
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
