"""Run an OQ protocol: each case on its own rig, steps with bounded waits, criteria, evidence.

Progress is one line per step on stderr. A step that cannot be carried out fails its case (with what
was waited for) and the runner goes on with the next case; the exit code is 1 when any case failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, TextIO

import structlog

from gateway.errors import GatewayError
from gateway.freezing import FreezerParameters, FreezingProfile, load_profile, profile_path
from gateway.qualify.evidence import Evidence, Item, environment, software_manifest, svg_line_plot, write_evidence
from gateway.qualify.oq.criteria import Verdict, evaluate
from gateway.qualify.oq.protocol import Case, Protocol, load_protocol, site_path
from gateway.qualify.oq.steps import Rig, StepFailed

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


async def run_case(case: Case, protocol_file: Path, work_dir: Path, progress: Callable[[str], None]) -> Item:
    """One case from set-up to verdict; never raises for a failure of the gateway under test."""
    started = _now()
    t0 = time.monotonic()
    steps: list[str] = []
    verdicts: list[Verdict] = []
    attachments: dict[str, str] = {}
    problem: str | None = None

    def note(line: str) -> None:
        steps.append(f"{time.monotonic() - t0:7.2f} s  {line}")

    site = site_path(case, protocol_file)
    try:
        async with Rig(site, work_dir / case.id, case.mode, pki_clients=list(case.pki.clients),
                       pki_expired=list(case.pki.expired_clients)) as rig:
            note(f"site {site.name}: simulators {', '.join(rig.sims) or 'none'}; gateway {case.mode.replace('_', '-')}")
            await rig.start_gateway()
            note("gateway started")
            for i, step in enumerate(case.steps, 1):
                what = step.describe()
                progress(f"{case.id} step {i}/{len(case.steps)}: {what}")
                try:
                    observed = await rig.run_step(step, i)
                except StepFailed as exc:
                    note(f"step {i}: {what} -> FAILED: {exc}")
                    problem = f"step {i} ({what}) failed: {exc}"
                    break
                note(f"step {i}: {what} -> {observed}")
            await rig.stop_gateway()
            note(f"gateway stopped; committed {rig.committed()}")
            if rig.exit_error is not None:
                note(f"the gateway had ended on: {rig.exit_error}")
            records, audit = rig.records(), rig.audit()
            if problem is None:
                verdicts = [evaluate(c, rig, records, audit) for c in case.accept]
            attachments = _plots(case, rig, records)
    except (GatewayError, OSError, ValueError, TypeError) as exc:
        problem = f"the rig could not run: {exc}".splitlines()[0]
        note(problem)
    observed = "\n".join(v.line() for v in verdicts) if problem is None else problem
    passed = problem is None and all(v.passed for v in verdicts)
    progress(f"{case.id} {'PASS' if passed else 'FAIL'} ({time.monotonic() - t0:.1f} s) {case.title}")
    if not passed:
        for v in verdicts:
            if not v.passed:
                progress(f"  {v.line()}")
        if problem:
            progress(f"  {problem}")
    return Item(
        id=case.id, title=case.title, requirement_ids=list(case.requirements), expected=case.expected,
        observed=observed, passed=passed, started=started, ended=_now(), steps=steps, attachments=attachments,
    )


def _plots(case: Case, rig: Rig, records: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    if "particles" in case.plots:
        out.update(_particle_plot(case, records))
    if "freezer" in case.plots:
        out.update(_freezer_plots(case, records))
    if "delivery" in case.plots and rig.timeline:
        series = {
            "committed (journal last seq)": [(s.t, float(s.committed)) for s in rig.timeline],
            "stored at the MES": [(s.t, float(s.delivered)) for s in rig.timeline],
        }
        bands = _outages(rig)
        out["delivery timeline"] = svg_line_plot(
            series, title=f"{case.id}: records committed vs delivered (shaded: MES down)",
            x_label="seconds since the case started", y_label="records", bands=bands,
        )
    return out


def _outages(rig: Rig) -> list[tuple[float, float, float, float]]:
    top = float(max((s.committed for s in rig.timeline), default=1)) or 1.0
    bands, start = [], None
    for s in rig.timeline:
        if s.mes_up is False and start is None:
            start = s.t
        elif s.mes_up is not False and start is not None:
            bands.append((start, s.t, 0.0, top))
            start = None
    if start is not None:
        bands.append((start, rig.timeline[-1].t, 0.0, top))
    return bands


def _particle_plot(case: Case, records: list[dict[str, Any]]) -> dict[str, str]:
    """Concentration against its limits, for each threshold criterion of the case."""
    out = {}
    for c in case.accept:
        t = c.threshold
        if t is None:
            continue
        points = [r for r in records if r.get("equipment_id") == t.equipment and r.get("parameter") == t.parameter
                  and r.get("kind") != "alarm" and isinstance(r.get("value"), int | float)]
        if not points:
            continue
        first = _time(points[0])
        hlines = {f"action limit {t.action:g}": t.action}
        if t.alert is not None:
            hlines[f"alert limit {t.alert:g}"] = t.alert
        out[f"{t.equipment} {t.parameter}"] = svg_line_plot(
            {t.parameter: [(_time(r) - first, float(r["value"])) for r in points]},
            title=f"{case.id}: {t.equipment} {t.parameter} against its limits", x_label="seconds (device time)",
            y_label="particles/m3", hlines=hlines,
        )
    return out


def _freezer_plots(case: Case, records: list[dict[str, Any]]) -> dict[str, str]:
    """Each freezer's measured chamber against the approved profile it ran and that profile's tolerance band.

    The approved temperature is recomputed from the profile file for the step and step time the freezer
    reported with each sample, so the plot is the reviewer's check of the conformance alarms, not a copy.
    """
    names = FreezerParameters()
    wanted = {names.profile_name, names.step, names.step_elapsed, names.chamber, names.run_state}
    samples: dict[str, dict[Any, dict[str, Any]]] = {}
    for r in records:
        if r.get("parameter") in wanted and r.get("kind") != "alarm":
            at = r.get("source_time") or r["gateway_time"]
            samples.setdefault(r["equipment_id"], {}).setdefault(at, {})[r["parameter"]] = r.get("value")
    out: dict[str, str] = {}
    for equipment, by_time in samples.items():
        state: dict[str, Any] = {}
        profiles: dict[str, FreezingProfile | None] = {}
        points: list[tuple[float, float, float | None, float]] = []
        for at in sorted(by_time):
            state.update({k: v for k, v in by_time[at].items() if v is not None})
            chamber, name = by_time[at].get(names.chamber), state.get(names.profile_name)
            if not isinstance(chamber, int | float) or not isinstance(name, str):
                continue
            if name not in profiles:
                try:
                    profiles[name] = load_profile(profile_path(name))
                except (GatewayError, OSError):
                    profiles[name] = None
            profile, step_no = profiles[name], state.get(names.step)
            elapsed = state.get(names.step_elapsed)
            expected = tolerance = None
            if profile is not None and isinstance(step_no, int) and isinstance(elapsed, int | float):
                expected = profile.expected_c(step_no, float(elapsed))
                step = profile.step(step_no)
                tolerance = (step.tolerance_c if step and step.tolerance_c else profile.chamber_tolerance_c)
            points.append((_time({"source_time": at}), float(chamber), expected, tolerance or 0.0))
        if len(points) < 2:
            continue
        t0 = points[0][0]
        series = {"chamber (measured)": [((t - t0) / 60, c) for t, c, _, _ in points],
                  "approved profile": [((t - t0) / 60, e) for t, _, e, _ in points if e is not None]}
        bands = [((a[0] - t0) / 60, (b[0] - t0) / 60, a[2] - a[3], a[2] + a[3])
                 for a, b in pairwise(points) if a[2] is not None]
        out[f"{equipment} chamber against the approved profile"] = svg_line_plot(
            series, title=f"{case.id}: {equipment} chamber vs approved profile (shaded: tolerance band)",
            x_label="minutes (device time)", y_label="Cel", bands=bands,
        )
    return out


def _time(record: dict[str, Any]) -> float:
    stamp = record.get("source_time") or record["gateway_time"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def run_protocol(
    protocol_file: Path,
    *,
    case_ids: list[str] | None = None,
    out_dir: Path | None = None,
    work_dir: Path | None = None,
    stderr: TextIO | None = None,
) -> tuple[Evidence, tuple[Path, Path] | None]:
    """Run the protocol's cases (or the named ones); write the evidence when ``out_dir`` is given."""
    err = stderr or sys.stderr

    def progress(line: str) -> None:
        print(line, file=err, flush=True)

    protocol: Protocol = load_protocol(protocol_file)
    cases = protocol.cases
    if case_ids:
        unknown = sorted(set(case_ids) - {c.id for c in cases})
        if unknown:
            raise GatewayError(f"{protocol_file}: no case {', '.join(unknown)} (have {', '.join(c.id for c in cases)})")
        cases = [c for c in cases if c.id in case_ids]
    started = _now()
    items = []
    with tempfile.TemporaryDirectory(prefix="oq-") as scratch:
        base = work_dir or Path(scratch)
        for case in cases:
            progress(f"{case.id} {case.title}")
            items.append(await run_case(case, protocol_file, base, progress))
    digest = hashlib.sha256(await asyncio.to_thread(protocol_file.read_bytes)).hexdigest()
    evidence = Evidence(
        kind="OQ", title=protocol.title, config_path=str(protocol_file),
        config_hash=digest, started=started, ended=_now(),
        items=items, environment=environment(), software=software_manifest(),
    )
    failed = [i.id for i in items if not i.passed]
    progress(f"OQ {protocol.title}: {len(items) - len(failed)}/{len(items)} passed"
             + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    written = write_evidence(evidence, out_dir) if out_dir is not None else None
    return evidence, written
