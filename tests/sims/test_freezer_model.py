"""The freezer's physics in simulated time, without a line: the classic profile followed, the sample lagging
and its exotherm, and what LN₂ running out, an open door and a power cut do to the chamber."""

from __future__ import annotations

import random

import pytest

from device_sims.freezer import FreezerModel, Physics, load_profile
from device_sims.freezer.model import ALARM_LN2, ALARM_POWER_FAIL, ALARM_SAMPLE_PROBE, InvalidState
from gateway.config import PROJECT_CONFIG_DIR

PROFILE = load_profile(PROJECT_CONFIG_DIR / "freezing-profiles" / "classic-cell-therapy.yaml")


def model(**physics: float) -> FreezerModel:
    return FreezerModel(PROFILE, Physics(**physics), random.Random(1), probes=2)  # type: ignore[arg-type]


def expected(step: int, elapsed_s: float) -> float:
    s = PROFILE.steps[step - 1]
    if s.type == "hold":
        return s.target_c
    start = PROFILE.steps[step - 2].target_c
    travelled = (s.rate_c_per_min or 0) * elapsed_s / 60
    return max(s.target_c, start - travelled) if s.target_c < start else min(s.target_c, start + travelled)


def test_the_checksum_is_the_one_the_gateway_computes_for_the_approved_profile() -> None:
    assert PROFILE.checksum == "11743B3C"


def test_a_classic_run_follows_the_profile_lags_and_shows_the_exotherm() -> None:
    m = model()
    m.start_run("LOT-1")
    worst, lag, sample_min, rise, ended = 0.0, 0.0, 99.0, 0.0, []
    while m.run is not None:
        r = m.reading()
        worst = max(worst, abs((r.chamber or 0) - expected(r.step, r.step_elapsed_s)))
        s = r.probes[0] or 0.0
        lag = max(lag, s - (r.chamber or 0)) if r.step == 2 else lag
        sample_min, rise = min(sample_min, s), max(rise, s - min(sample_min, s))
        ended += m.advance(10)
    assert [outcome for _, outcome in ended] == ["COMPLETE"]
    assert 59 * 60 < m.time_s < 62 * 60, "about an hour"
    assert worst < 1.0, "a healthy freezer follows its profile within a degree"
    assert 2.0 < lag < 6.0, "the bag lags the chamber by minutes at -1 Cel/min"
    assert 2.0 < rise < 5.0, "the latent heat warms the sample a few degrees, within the allowance"
    assert m.probes[0].temp < -70


def test_ln2_empty_leaves_the_chamber_behind_with_the_valve_wide_open() -> None:
    m = model()
    m.start_run()
    m.advance(25 * 60)  # into step 5
    m.faults.ln2_empty = True
    m.advance(5 * 60)
    r = m.reading()
    assert r.step == 5 and r.chamber is not None and r.chamber - r.set_point > 4
    assert r.alarms & ALARM_LN2 and r.valve_pct > 10


def test_an_open_door_lets_the_room_in_at_low_temperature() -> None:
    m = model()
    m.start_run()
    m.advance(52 * 60)  # step 6, towards -90
    m.faults.door_open = True
    m.advance(120)
    r = m.reading()
    assert r.chamber is not None and r.chamber - r.set_point > 5


def test_an_open_thermocouple_reads_nothing_and_says_so() -> None:
    m = model()
    m.faults.open_probes.add(1)
    r = m.reading()
    assert r.probes[0] is None and r.probes[1] is not None and r.alarms & ALARM_SAMPLE_PROBE


@pytest.mark.parametrize(("outage_s", "aborted"), [(120, False), (900, True)])
def test_a_power_cut_pauses_the_profile_then_resumes_or_aborts(outage_s: float, aborted: bool) -> None:
    m = model(resume_max_s=600)
    m.start_run()
    m.advance(30 * 60)
    step, elapsed = m.run.step, m.run.step_elapsed_s  # type: ignore[union-attr]
    m.power(False)
    chamber = m.chamber
    m.advance(outage_s)
    assert m.chamber > chamber, "no control: the chamber warms"
    assert (m.run.step, m.run.step_elapsed_s) == (step, elapsed)  # type: ignore[union-attr]
    outage, outcome = m.power(True)
    assert outage == outage_s
    if aborted:
        assert outcome == "POWERFAIL" and m.run is None
    else:
        assert outcome is None and m.reading().alarms & ALARM_POWER_FAIL


def test_commands_the_freezer_refuses() -> None:
    m = model()
    m.start_run()
    with pytest.raises(InvalidState, match="run R0001 is going"):
        m.start_run()
    with pytest.raises(InvalidState, match="run R0001 is going"):
        m.load(PROFILE)
    m.stop_run()
    with pytest.raises(InvalidState, match="no run"):
        m.stop_run()
