"""Controlled-rate freezing: the approved profile as data, and the monitor that judges a run against it.

Protocol-free on purpose: a freezer on a serial line and one behind OPC UA report the same facts (the
run's state, the loaded profile's name and checksum, the step and the time in it, chamber and sample
temperatures), and the same approved profile judges both. An adapter plugin wires it in through
``plugin.monitors(equipment, device_map)``.

An approved profile (``config/freezing-profiles/<name>.yaml``) is a list of steps, each a hold at a
temperature or a linear ramp at a rate, with the tolerance bands a reviewer signed off. The monitor
compares every chamber reading with the temperature the approved profile asks for at that step and
time-in-step, and every sample-probe reading with its own running minimum (the latent-heat exotherm
may warm the sample by an allowed amount, no more). A deviation is an alarm row naming the step, the
magnitude and the time it left the band, and a second alarm row when it comes back. A loaded profile
whose name is not approved, or whose checksum differs from the approved one, is an alarm too: the
gateway reads the freezer, it never refuses a run on it, so it says loudly that the run is not the
approved one.

The profile checksum is CRC-32 of a canonical text of the steps (:func:`canonical_text`); a freezer
that computes its own vendor checksum has it pinned in the profile file as ``device_checksum``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.config import data_file_path, load_yaml_model
from gateway.monitors import Row
from gateway.records import Kind, Quality

_STRICT = ConfigDict(extra="forbid", frozen=True)

#: Where shipped approved profiles live, under the project's config folder.
PROFILE_FOLDER = "freezing-profiles"


class ProfileStep(BaseModel):
    """One step: hold at ``target_c`` (for ``duration_min``, or until the operator moves on) or ramp to it."""

    model_config = _STRICT

    type: Literal["hold", "ramp"]
    target_c: float = Field(ge=-196, le=60, description="temperature the step holds or ramps to")
    rate_c_per_min: float | None = Field(
        default=None, gt=0, le=100, description="ramp only: rate towards the target (direction from the targets)"
    )
    duration_min: float | None = Field(
        default=None, gt=0, description="hold only: how long; absent means until the operator moves on"
    )
    tolerance_c: float | None = Field(
        default=None, gt=0, description="chamber band ± for this step (else the profile's)"
    )
    grace_s: float | None = Field(
        default=None, ge=0, description="seconds after the step starts before a deviation counts (else the profile's)"
    )
    label: str = ""

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> ProfileStep:
        if self.type == "ramp":
            if self.rate_c_per_min is None:
                raise ValueError("a ramp needs rate_c_per_min")
            if self.duration_min is not None:
                raise ValueError("a ramp's duration follows from its rate: give rate_c_per_min only")
        elif self.rate_c_per_min is not None:
            raise ValueError("a hold has no rate_c_per_min")
        return self

    def token(self) -> str:
        """This step in the canonical text the checksum covers."""
        if self.type == "ramp":
            return f"R,{self.target_c:.1f},{self.rate_c_per_min:.2f}"
        duration = "-" if self.duration_min is None else f"{self.duration_min:.1f}"
        return f"H,{self.target_c:.1f},{duration}"


class FreezingProfile(BaseModel):
    """An approved freezing profile and the bands it is judged by."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="the name the freezer reports")
    version: int = Field(ge=1, le=9999)
    description: str = ""
    source: str = Field(default="", description="where the profile comes from (SOP, validation report)")
    chamber_tolerance_c: float = Field(default=3.0, gt=0, description="chamber band ± around the profile")
    step_grace_s: float = Field(default=60.0, ge=0, description="seconds after a step change before deviations count")
    persist_s: float = Field(default=30.0, ge=0, description="device seconds out of band before it is a deviation")
    sample_rise_allowance_c: float = Field(
        default=5.0, gt=0, description="how far the sample may warm above its lowest reading (latent-heat exotherm)"
    )
    device_checksum: str | None = Field(
        default=None,
        pattern=r"^[0-9A-F]{4,16}$",
        description="the checksum the freezer itself reports for this profile, if it is not the canonical CRC-32",
    )
    steps: list[ProfileStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _starts_with_a_hold(self) -> FreezingProfile:
        if self.steps[0].type != "hold":
            raise ValueError("the first step must be a hold: it fixes the start temperature the first ramp leaves from")
        for i, step in enumerate(self.steps[1:], start=2):
            if step.type == "ramp" and step.target_c == self.steps[i - 2].target_c:
                raise ValueError(f"step {i} ramps to the temperature it starts from")
        return self

    @property
    def checksum(self) -> str:
        """What the freezer must report for this profile: ``device_checksum`` or the canonical CRC-32."""
        return self.device_checksum or canonical_checksum(self)

    def step(self, number: int) -> ProfileStep | None:
        """Step ``number`` (1-based, as freezers count), or None if the profile has no such step."""
        return self.steps[number - 1] if 1 <= number <= len(self.steps) else None

    def expected_c(self, number: int, elapsed_s: float) -> float | None:
        """The chamber temperature the profile asks for ``elapsed_s`` into step ``number``."""
        step = self.step(number)
        if step is None:
            return None
        if step.type == "hold":
            return step.target_c
        start = self.steps[number - 2].target_c  # step 1 is a hold, so a ramp always has a previous step
        travelled = (step.rate_c_per_min or 0.0) * max(elapsed_s, 0.0) / 60.0
        if step.target_c < start:
            return max(step.target_c, start - travelled)
        return min(step.target_c, start + travelled)

    def describe(self, number: int) -> str:
        step = self.step(number)
        if step is None:
            return f"step {number} (not in profile {self.name})"
        what = (
            f"ramp {step.rate_c_per_min:g} Cel/min to {step.target_c:g} Cel"
            if step.type == "ramp"
            else f"hold {step.target_c:g} Cel"
        )
        return f"step {number} ({step.label or what})"


def canonical_text(profile: FreezingProfile) -> str:
    """``name;version;H,4.0,10.0;R,-6.0,1.00;...``: what a profile's checksum covers (bands do not count)."""
    return ";".join([profile.name, str(profile.version), *(s.token() for s in profile.steps)])


def canonical_checksum(profile: FreezingProfile) -> str:
    """CRC-32 (zlib) of the canonical text, as 8 uppercase hex digits."""
    return f"{zlib.crc32(canonical_text(profile).encode('ascii')):08X}"


def profile_path(value: str, context: dict[str, Any] | None = None) -> Path:
    """A shipped profile by name (``config/freezing-profiles/<name>.yaml``) or the site's own file."""
    return data_file_path(value, context, PROFILE_FOLDER)


def load_profile(path: Path) -> FreezingProfile:
    """One approved profile file; ConfigError lists every problem as ``FILE:LINE: path: message``."""
    return load_yaml_model(path, FreezingProfile, shape="a freezing profile is a mapping with name:, version:, steps:")


@dataclass(frozen=True)
class FreezerParameters:
    """Which record parameters carry the facts the monitor reads (the defaults are what the adapters use)."""

    run_state: str = "run_state"
    run_id: str = "run_id"
    profile_name: str = "profile_name"
    profile_checksum: str = "profile_checksum"
    step: str = "profile_step"
    step_elapsed: str = "step_elapsed"
    chamber: str = "chamber_temperature"
    sample: str = "sample_temperature"


@dataclass
class _Excursion:
    """An open deviation (or a candidate one not yet past ``persist_s``)."""

    since: datetime
    step: int
    peak: float
    announced: bool = False


@dataclass
class _Run:
    run_id: str | None
    deviations: int = 0
    worst_c: float = 0.0
    sample_min: float | None = None
    chamber: _Excursion | None = None
    sample: _Excursion | None = None


@dataclass
class ConformanceMonitor:
    """Judges one freezer's runs against its approved profiles; one instance per equipment.

    Rows it returns (the pipeline adds identity, lot and step):

    * ``profile_approval`` (alarm): ``normal`` | ``checksum_mismatch`` | ``profile_not_approved``, when
      the loaded profile's name or checksum is read and the verdict changes;
    * ``chamber_profile_deviation`` (alarm): ``deviation`` once the chamber has been out of its band for
      ``persist_s``, then ``normal`` when it is back (``run_ended`` if the run ends first), with
      ``chamber_profile_deviation_c`` (Cel, signed: measured minus approved; the peak on return);
    * ``sample_exotherm`` (alarm): ``allowance_exceeded`` / ``normal`` with ``sample_rise_c``;
    * ``profile_conformance`` (event) at the end of each run: ``conforming`` or ``deviations``.
    """

    profiles: Mapping[str, FreezingProfile]
    names: FreezerParameters = field(default_factory=FreezerParameters)
    _values: dict[str, Any] = field(default_factory=dict)
    _run: _Run | None = None
    _verdict: str | None = None

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        out: list[Row] = []
        n = self.names
        for row in rows:
            parameter = row.get("parameter")
            if parameter not in (n.run_state, n.run_id, n.profile_name, n.profile_checksum, n.step,
                                 n.step_elapsed, n.chamber, n.sample):
                continue
            value = row.get("value") if _usable(row) else None
            self._values[parameter] = value
            if parameter == n.profile_checksum:
                out += self._approval(row)
            elif parameter == n.run_state:
                out += self._run_state(row, value)
            elif parameter == n.chamber and value is not None and self._run is not None:
                out += self._chamber(row, float(value))
            elif parameter == n.sample and value is not None and self._run is not None:
                out += self._sample(row, float(value))
        return out

    # -- the loaded profile ------------------------------------------------------------------------
    def _profile(self) -> FreezingProfile | None:
        name = self._values.get(self.names.profile_name)
        return self.profiles.get(name) if isinstance(name, str) else None

    def _approval(self, row: Mapping[str, Any]) -> list[Row]:
        name = self._values.get(self.names.profile_name)
        checksum = self._values.get(self.names.profile_checksum)
        if not isinstance(name, str) or not isinstance(checksum, str):
            return []
        approved = self.profiles.get(name)
        if approved is None:
            verdict = "profile_not_approved"
            detail = f"the freezer has profile {name} (checksum {checksum}) loaded, which is not an approved " \
                     f"profile for it (approved: {', '.join(sorted(self.profiles)) or 'none'})"
        elif checksum.upper() != approved.checksum:
            verdict = "checksum_mismatch"
            detail = f"profile {name} on the freezer has checksum {checksum}, the approved version " \
                     f"{approved.version} has {approved.checksum}: the loaded steps are not the approved ones"
        else:
            verdict = "normal"
            detail = f"profile {name} checksum {checksum} is approved version {approved.version}"
        if verdict == self._verdict:
            return []
        self._verdict = verdict
        return [_alarm(row, "profile_approval", verdict, detail)]

    # -- runs --------------------------------------------------------------------------------------
    def _run_state(self, row: Mapping[str, Any], state: Any) -> list[Row]:
        out: list[Row] = []
        if state == "running":
            run_id = self._values.get(self.names.run_id)
            if self._run is None or self._run.run_id != run_id:
                out += self._end_run(row)
                self._run = _Run(run_id if isinstance(run_id, str) else None)
        elif state is not None:
            out += self._end_run(row)
        return out

    def _end_run(self, row: Mapping[str, Any]) -> list[Row]:
        run, self._run = self._run, None
        if run is None:
            return []
        out: list[Row] = []
        for name, exc in (("chamber_profile_deviation", run.chamber), ("sample_exotherm", run.sample)):
            if exc is not None and exc.announced:
                out.append(_alarm(row, name, "run_ended", f"run ended while out of band (since "
                                  f"{exc.since.isoformat()}, peak {exc.peak:+.1f} Cel)"))
        label = run.run_id or "?"
        if run.deviations:
            out.append(_event(row, "profile_conformance", "deviations",
                              f"run {label}: {run.deviations} deviation(s) from the approved profile, "
                              f"worst {run.worst_c:+.1f} Cel"))
        else:
            out.append(_event(row, "profile_conformance", "conforming",
                              f"run {label}: chamber and sample stayed within the approved profile's bands"))
        return out

    # -- chamber against the profile ---------------------------------------------------------------
    def _chamber(self, row: Mapping[str, Any], measured: float) -> list[Row]:
        run = self._run
        assert run is not None
        profile = self._profile()
        step_no, elapsed = self._values.get(self.names.step), self._values.get(self.names.step_elapsed)
        if profile is None or not isinstance(step_no, int) or not isinstance(elapsed, int | float):
            return []
        step = profile.step(step_no)
        expected = profile.expected_c(step_no, float(elapsed))
        if step is None or expected is None:
            return []
        tolerance = step.tolerance_c or profile.chamber_tolerance_c
        grace = profile.step_grace_s if step.grace_s is None else step.grace_s
        deviation = measured - expected
        at = _time(row)
        out: list[Row] = []
        exc = run.chamber
        if abs(deviation) <= tolerance:
            if exc is not None and exc.announced:
                out.append(_alarm(row, "chamber_profile_deviation", "normal",
                                  f"{profile.describe(step_no)}: chamber {measured:.1f} Cel back within ±{tolerance:g} "
                                  f"of the approved {expected:.1f} Cel; out of band since {exc.since.isoformat()}, "
                                  f"peak {exc.peak:+.1f} Cel"))
                out.append(_measure(row, "chamber_profile_deviation_c", round(exc.peak, 2),
                                    "peak deviation of the excursion that just ended"))
            run.chamber = None
            return out
        if exc is None:
            if elapsed < grace:
                return out
            exc = run.chamber = _Excursion(at, step_no, deviation)
        if abs(deviation) > abs(exc.peak):
            exc.peak = deviation
        if not exc.announced and (at - exc.since).total_seconds() >= profile.persist_s:
            exc.announced = True
            run.deviations += 1
            run.worst_c = max(run.worst_c, deviation, key=abs)
            side = "above" if deviation > 0 else "below"
            out.append(_alarm(row, "chamber_profile_deviation", "deviation",
                              f"{profile.describe(step_no)}: chamber {measured:.1f} Cel is {abs(deviation):.1f} Cel "
                              f"{side} the approved {expected:.1f} Cel (band ±{tolerance:g}) since "
                              f"{exc.since.isoformat()}"))
            out.append(_measure(row, "chamber_profile_deviation_c", round(deviation, 2),
                                "measured minus approved when the deviation was declared"))
        elif exc.announced:
            run.worst_c = max(run.worst_c, deviation, key=abs)
        return out

    # -- sample exotherm ---------------------------------------------------------------------------
    def _sample(self, row: Mapping[str, Any], measured: float) -> list[Row]:
        run = self._run
        assert run is not None
        profile = self._profile()
        if profile is None:
            return []
        if run.sample_min is None or measured < run.sample_min:
            run.sample_min = measured
        rise = measured - run.sample_min
        allowance = profile.sample_rise_allowance_c
        exc = run.sample
        out: list[Row] = []
        if rise <= allowance:
            if exc is not None:
                out.append(_alarm(row, "sample_exotherm", "normal",
                                  f"sample {measured:.1f} Cel back within {allowance:g} Cel of its lowest "
                                  f"{run.sample_min:.1f} Cel; peak rise {exc.peak:.1f} Cel"))
                out.append(_measure(row, "sample_rise_c", round(exc.peak, 2), "peak rise of the excursion that ended"))
            run.sample = None
            return out
        if exc is None:
            step_no = self._values.get(self.names.step)
            run.sample = _Excursion(_time(row), step_no if isinstance(step_no, int) else 0, rise, announced=True)
            run.deviations += 1
            run.worst_c = max(run.worst_c, rise, key=abs)
            where = profile.describe(run.sample.step)
            out.append(_alarm(row, "sample_exotherm", "allowance_exceeded",
                              f"{where}: sample {measured:.1f} Cel warmed {rise:.1f} Cel above its lowest "
                              f"{run.sample_min:.1f} Cel (allowance {allowance:g} Cel)"))
            out.append(_measure(row, "sample_rise_c", round(rise, 2), "rise when the allowance was exceeded"))
        elif rise > exc.peak:
            exc.peak = rise
            run.worst_c = max(run.worst_c, rise, key=abs)
        return out


def _usable(row: Mapping[str, Any]) -> bool:
    quality = row.get("quality", Quality.GOOD)
    return Quality(quality).severity != "bad"


def _time(row: Mapping[str, Any]) -> datetime:
    at = row.get("source_time") or row.get("gateway_time")
    assert isinstance(at, datetime)
    return at


def _base(row: Mapping[str, Any]) -> Row:
    return {"gateway_time": row["gateway_time"], "source_time": row.get("source_time")}


def _alarm(row: Mapping[str, Any], parameter: str, value: str, detail: str) -> Row:
    return {**_base(row), "parameter": parameter, "kind": Kind.ALARM, "value": value, "detail": detail}


def _event(row: Mapping[str, Any], parameter: str, value: str, detail: str) -> Row:
    return {**_base(row), "parameter": parameter, "kind": Kind.EVENT, "value": value, "detail": detail}


def _measure(row: Mapping[str, Any], parameter: str, value: float, detail: str) -> Row:
    return {**_base(row), "parameter": parameter, "kind": Kind.MEASUREMENT, "value": value, "unit": "Cel",
            "detail": detail}
