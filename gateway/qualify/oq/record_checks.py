"""Criteria judged on the committed records alone: their order, fault windows, limit arithmetic redone,
repeats, device clocks, sample spacing and exact values."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson

from gateway.qualify.oq.acceptance import Criterion
from gateway.qualify.oq.verdict import Verdict, ranges, stamp


def in_order(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
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


def none_between(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
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
    found = f"{len(hits)} such record(s)" + (f": {ranges(hits)}" if hits else "")
    return Verdict(bool(windows) and not hits, expected, f"{len(windows)} window(s) (seqs {shown}); {found}")


def threshold(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
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


def repeats(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
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


def clock(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.clock
    assert want is not None
    mine = [r for r in records if r.get("equipment_id") == want.equipment
            and (want.parameter is None or r.get("parameter") == want.parameter)]
    offsets, both, recorded = [], 0, 0
    back_source, back_gateway = [], []
    last_source = last_gateway = None
    for r in mine:
        source, gateway = stamp(r.get("source_time")), stamp(r.get("gateway_time"))
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
        f" {ranges(back_source)}, receive time backwards at seqs {ranges(back_gateway)};"
        f" clock_offset_s filled on {recorded}",
    )


def sample_spacing(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.sample_spacing
    assert want is not None
    stamped = sorted(t for r in records if r.get("equipment_id") == want.equipment
                     and r.get("parameter") == want.parameter and str(r.get("quality", "")).startswith("Good")
                     and (t := stamp(r.get("source_time"))) is not None)
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


def values_in_order(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
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
