"""The process model alone (no server): steps advance in simulated time, runs end with a result."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from device_sims.closed_processor.model import DAY_S, TEMPLATES, InvalidState, ProcessModel

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _model(**kwargs: object) -> ProcessModel:
    return ProcessModel(random.Random(1), **kwargs)  # type: ignore[arg-type]


def test_a_car_t_run_walks_every_step_and_completes() -> None:
    model = _model()
    run_id = model.start_program("CAR-T-STD", "LOT-1", "OP-10", NOW)
    seen = []
    densities = []
    for _ in range(20_000):
        if model.run is None:
            break
        seen.append(model.run.steps[model.run.step_index].name)
        densities.append(model.density_e6_per_ml)
        model.advance(60.0, NOW)
        assert 36.5 < model.temperature_c < 37.5 and 4.5 < model.co2_pct < 5.5
        assert 6.8 <= model.ph <= 7.4 and 20.0 <= model.do_pct <= 60.0
    steps = [s.name for s in TEMPLATES["CAR-T-STD"][1]]
    assert list(dict.fromkeys(seen)) == steps
    assert model.state_name() == "Running.Complete"
    [result] = model.results
    assert (result.run_id, result.job_id, result.task_id, result.outcome) == (run_id, "LOT-1", "OP-10", "completed")
    assert max(densities) > 5.0  # roughly 12-fold from 0.5e6/mL in expansion


def test_start_while_running_is_invalid_state_and_stop_records_the_result() -> None:
    model = _model()
    model.start_program("WASH-ONLY", "LOT-2", "", NOW)
    with pytest.raises(InvalidState):
        model.start_program("WASH-ONLY", "LOT-3", "", NOW)
    with pytest.raises(InvalidState, match="unknown program template"):
        _model().start_program("NOPE", "LOT-3", "", NOW)
    result = model.end_run("stopped", NOW)
    assert result.outcome == "stopped" and model.state_name() == "Stopped" and model.run is None
    with pytest.raises(InvalidState):
        model.end_run("aborted", NOW)


def test_operator_action_holds_the_run_until_acknowledged() -> None:
    model = _model(operator_action_steps=["selection"])
    model.start_program("CAR-T-STD", "LOT-4", "", NOW)
    model.advance(1_800 + 3_600 + 1, NOW)
    assert model.state_name() == "Running.Held" and model.alarms()["OperatorActionRequired"]
    model.advance(DAY_S, NOW)
    assert model.run is not None and model.run.steps[model.run.step_index].name == "selection"
    model.acknowledge()
    assert model.state_name() == "Running.Execute" and not model.alarms()["OperatorActionRequired"]


def test_temperature_excursion_raises_the_deviation_alarm_for_its_duration() -> None:
    model = _model()
    model.faults.excursion_left_s, model.faults.excursion_delta_c = 100.0, 2.0
    model.advance(60.0, NOW)
    assert model.alarms()["TemperatureDeviation"]
    model.advance(60.0, NOW)
    model.advance(60.0, NOW)
    assert not model.alarms()["TemperatureDeviation"]
