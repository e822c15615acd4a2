"""Criteria judged on the committed records alone: their order, fault windows, limit arithmetic redone,
repeats and corrections, device clocks, sample spacing and exact values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
        key = (r.get("equipment_id"), r.get("parameter"), r.get("result_key"), orjson.dumps(r.get("value")),
               r["raw_sha256"])
        if key in seen:
            repeats.append((r["seq"], seen[key]))
        else:
            seen[key] = r["seq"]
    filters = want.model_dump(exclude_none=True, exclude={"count", "min_count"})
    pairs = ", ".join(f"seq {a} repeats seq {b}" for a, b in repeats[:6])
    shown = f"{len(repeats)}" + (f": {pairs}" if repeats else "")
    what = f"record(s) {filters} repeating an earlier one (same result_key, value and raw_sha256)"
    if want.count is not None:
        return Verdict(len(repeats) == want.count, f"exactly {want.count} {what}", shown)
    return Verdict(len(repeats) >= (want.min_count or 0), f"at least {want.min_count} {what}", shown)


def clock(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    want = criterion.clock
    assert want is not None
    mine = [r for r in records if r.get("equipment_id") == want.equipment
            and (want.parameter is None or r.get("parameter") == want.parameter)]
    offsets, both, recorded = [], 0, 0
    back_source, back_gateway, twice = [], [], []
    last_source = last_gateway = None
    samples: set[tuple[Any, ...]] = set()
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
        sample = (r.get("parameter"), source, orjson.dumps(r.get("value")))
        if r.get("kind") != "alarm" and sample in samples:
            twice.append(r["seq"])
        samples.add(sample)
    within = [o for o in offsets if want.offset_min_s <= o <= want.offset_max_s]
    if want.allow_device_time_back:
        ok = len(within) >= want.min_count and not twice and not back_gateway
        rule = "the receive time never going backwards in seq order and no device sample journalled twice"
        seen = f"device time backwards at seqs {ranges(back_source)} (allowed), device sample seen again at seqs"
        seen += f" {ranges(twice)}"
    else:
        ok = len(within) >= want.min_count and not back_source and not back_gateway
        rule = "neither going backwards in seq order"
        seen = f"device time backwards at seqs {ranges(back_source)}"
    return Verdict(
        ok,
        f"{want.equipment}{' ' + want.parameter if want.parameter else ''}: device time - receive time within"
        f" {want.offset_min_s:g}..{want.offset_max_s:g} s on at least {want.min_count} record(s), both times kept,"
        f" {rule}",
        f"{len(mine)} records, {both} with both times; {len(within)} within (offsets from"
        f" {min(offsets, default=0):.2f} to {max(offsets, default=0):.2f} s); {seen}, receive time backwards at seqs"
        f" {ranges(back_gateway)}; clock_offset_s filled on {recorded}",
    )


def clock_offset(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    """The offsets the gateway recorded (``clock_offset_s``) in a window of the journal: how many in a range,
    how far apart, and where the device clock stood at each comparison."""
    want = criterion.clock_offset
    assert want is not None
    window = ("" if want.after is None else f" after the first {_named(want.after)}") + (
        "" if want.before is None else f" before the next {_named(want.before)}")
    expected = [f"on at least {want.min_count} record(s) within {want.min_s:g}..{want.max_s:g} s"
                ] if want.min_s is not None and want.max_s is not None else []
    if want.max_spread_s is not None:
        expected.append(f"no two further apart than {want.max_spread_s:g} s")
    if want.spans is not None:
        expected.append(f"comparisons at device times on both sides of {_iso(want.spans)}")
    expected_line = (f"{want.equipment}{' ' + want.parameter if want.parameter else ''} clock_offset_s{window}: "
                     + "; ".join(expected))
    bounds = _window(records, want.after, want.before)
    if isinstance(bounds, str):
        return Verdict(False, expected_line, bounds)
    start, end = bounds
    mine = [r for r in records if start < r["seq"] < end and r.get("equipment_id") == want.equipment
            and (want.parameter is None or r.get("parameter") == want.parameter)
            and isinstance(r.get("clock_offset_s"), int | float)]
    if not mine:
        return Verdict(False, expected_line, "no record with an offset in the window")
    offsets = [float(r["clock_offset_s"]) for r in mine]
    checks: list[bool] = []
    seen = f"{len(mine)} record(s) with an offset (seqs {mine[0]['seq']}..{mine[-1]['seq']}), from" \
           f" {min(offsets):.3f} to {max(offsets):.3f} s"
    if want.min_s is not None and want.max_s is not None:
        within = sum(1 for o in offsets if want.min_s <= o <= want.max_s)
        checks.append(within >= want.min_count)
        seen += f"; {within} within"
    if want.max_spread_s is not None:
        checks.append(max(offsets) - min(offsets) <= want.max_spread_s)
        seen += f"; spread {max(offsets) - min(offsets):.3f} s"
    if want.spans is not None:
        # a new offset along the records is a new comparison; where the device clock stood at it, in UTC
        compared = [stamp(r["gateway_time"]) + timedelta(seconds=float(r["clock_offset_s"]))  # type: ignore[operator]
                    for i, r in enumerate(mine) if i == 0 or r["clock_offset_s"] != mine[i - 1]["clock_offset_s"]]
        before = sum(1 for c in compared if c < want.spans)
        after = sum(1 for c in compared if c > want.spans)
        checks.append(before > 0 and after > 0)
        seen += (f"; {len(compared)} comparison(s), {before} before and {after} after {_iso(want.spans)}"
                 f" (device times {_iso(compared[0])} to {_iso(compared[-1])})")
    return Verdict(all(checks), expected_line, seen)


def _window(records: list[dict[str, Any]], after: Any, before: Any) -> tuple[float, float] | str:
    """The seqs strictly between the first record matching ``after`` and the first matching ``before`` after it
    (the whole journal for a bound not given); a line saying which bound is missing otherwise."""
    start: float = 0
    if after is not None:
        first = next((r["seq"] for r in records if after.matches(r)), None)
        if first is None:
            return f"no {_named(after)} in the journal: the window is not there"
        start = first
    end: float = float("inf")
    if before is not None:
        last = next((r["seq"] for r in records if r["seq"] > start and before.matches(r)), None)
        if last is None:
            return f"no {_named(before)} in the journal after seq {start:g}: the window is not there"
        end = last
    return start, end


def corrections(criterion: Criterion, records: list[dict[str, Any]]) -> Verdict:
    """Every correction names an earlier version of its result by raw_sha256 (or says it cannot)."""
    want = criterion.corrections
    assert want is not None
    earlier: dict[tuple[Any, ...], dict[str, Any]] = {}
    changed: list[str] = []
    unchanged: list[str] = []
    unknown: list[int] = []
    broken: list[str] = []
    for r in records:
        link = r.get("corrects")
        if want.matches(r) and link is not None:
            if link == "unknown":
                unknown.append(r["seq"])
            elif (was := earlier.get((r.get("equipment_id"), r.get("result_key"), r.get("parameter"), link))) is None:
                broken.append(f"seq {r['seq']} ({r.get('parameter')}, {r.get('result_key')}) names {str(link)[:12]}...,"
                              " which no earlier record of its result has")
            elif orjson.dumps(was.get("value")) != orjson.dumps(r.get("value")):
                changed.append(f"seq {r['seq']} {r.get('parameter')} corrects seq {was['seq']} (same result_key and"
                               f" raw_sha256 {str(link)[:12]}...): was {was.get('value')!r}, now {r.get('value')!r}")
            else:
                unchanged.append(f"seq {r['seq']} (unchanged {r.get('parameter')} of seq {was['seq']})")
        if r.get("raw_sha256"):
            key = (r.get("equipment_id"), r.get("result_key"), r.get("parameter"), r["raw_sha256"])
            earlier.setdefault(key, r)
    filters = want.model_dump(exclude_none=True, exclude={"count", "min_count", "unknown"})
    bound = f"exactly {want.count}" if want.count is not None else f"at least {want.min_count}"
    n = len(changed)
    ok = (n == want.count if want.count is not None else n >= (want.min_count or 0)) and len(unknown) == want.unknown
    ok = ok and not broken
    seen = f"{n} linked correction(s) changing the value" + (f": {'; '.join(changed[:4])}" if changed else "")
    seen += f"; {len(unchanged)} linked unchanged item(s)" + (f" ({', '.join(unchanged[:4])})" if unchanged else "")
    seen += f"; {len(unknown)} 'corrects: unknown'" + (f" at seqs {ranges(unknown)}" if unknown else "")
    seen += f"; {len(broken)} link(s) to no earlier version" + (f": {'; '.join(broken[:3])}" if broken else "")
    return Verdict(ok, f"{bound} correction(s) {filters} naming an earlier record of the same result_key and parameter"
                   f" by its raw_sha256 and changing its value; exactly {want.unknown} with corrects: unknown; none"
                   " naming a version that is not in the journal before it", seen)


def _named(f: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in f.model_dump(exclude_none=True).items())


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
