"""The counting model and the encodings without any I/O: limits, Poisson draws, excursions, packing."""

from __future__ import annotations

import random
import statistics

import pytest

from device_sims.particle_counter import ParticleCounterSim, limit_per_m3, sampled_volume_m3
from device_sims.particle_counter.model import CounterConfig, CounterModel, poisson
from device_sims.particle_counter.registers import ascii_registers, f32_lo_hi, u32_hi_lo


def test_table5_anchors_and_interpolation() -> None:
    assert limit_per_m3("A", "in_operation", 0.5) == 3_520
    assert limit_per_m3("A", "in_operation", 5.0) == 29
    assert limit_per_m3("B", "in_operation", 0.5) == 352_000
    assert limit_per_m3("C", "at_rest", 5.0) == 2_930
    assert limit_per_m3("D", "at_rest", 0.5) == 3_520_000
    # between the anchors the ISO 14644-1 power law holds: C ~ D^-2.08
    assert limit_per_m3("C", "in_operation", 1.0) == pytest.approx(3_520_000 * 0.5**2.08, rel=0.01)
    assert limit_per_m3("A", "at_rest", 0.3) > 3_520
    with pytest.raises(ValueError, match="grade"):
        limit_per_m3("E", "at_rest", 0.5)


@pytest.mark.parametrize("mean", [0.3, 4.0, 25.0, 400.0, 20_000.0])
def test_poisson_draws_have_the_right_mean_and_variance(mean: float) -> None:
    rng = random.Random(42)
    draws = [poisson(rng, mean) for _ in range(4000)]
    assert statistics.fmean(draws) == pytest.approx(mean, rel=0.06, abs=0.03)
    assert statistics.pvariance(draws) == pytest.approx(mean, rel=0.15, abs=0.05)


def _model(seed: int, **overrides: object) -> CounterModel:
    settings: dict[str, object] = {
        "channels_um": (0.3, 0.5, 1.0, 5.0),
        "grade": "C",
        "room_state": "in_operation",
        "sample_time_s": 60.0,
        "buffer_capacity": 100,
    }
    settings.update(overrides)
    return CounterModel(CounterConfig(**settings), random.Random(seed), wall_clock=lambda: 1_800_000_000.0)  # type: ignore[arg-type]


def test_counts_sit_at_a_fraction_of_the_limit_and_are_cumulative() -> None:
    model = _model(1)
    model.start(0.0)
    assert model.advance(60.0 * 50) == 50
    volume = sampled_volume_m3(1.0, 60.0)
    at_05 = statistics.fmean(s.counts[1] for s in model.buffer) / volume
    assert 0.1 * 3_520_000 < at_05 < 0.3 * 3_520_000
    for sample in model.buffer:
        assert list(sample.counts) == sorted(sample.counts, reverse=True)
        assert sum(sample.differential()) == sample.counts[0]
        assert sample.timestamp == 1_800_000_000


def test_the_same_seed_gives_the_same_counts() -> None:
    first, second = _model(7), _model(7)
    for model in (first, second):
        model.start(0.0)
        model.advance(600.0)
    assert [s.counts for s in first.buffer] == [s.counts for s in second.buffer]
    other = _model(8)
    other.start(0.0)
    other.advance(600.0)
    assert [s.counts for s in other.buffer] != [s.counts for s in first.buffer]


def test_an_excursion_exceeds_the_limit_even_in_a_tiny_sample() -> None:
    model = _model(3, grade="A", sample_time_s=0.01)
    model.faults.excursion_samples_left = 3
    model.start(0.0)
    model.advance(0.03)
    volume = sampled_volume_m3(1.0, 0.01)
    for sample in model.buffer:
        for size, count in zip((0.3, 0.5, 1.0, 5.0), sample.counts, strict=True):
            assert count / volume > limit_per_m3("A", "in_operation", size)
        assert all(sample.over_limit)
    assert model.faults.excursion_samples_left == 0


def test_packing_matches_the_manual_examples() -> None:
    assert u32_hi_lo(1_234_567) == (0x0012, 0xD687)  # Lighthouse manual: count 1 234 567
    assert f32_lo_hi(21.5) == (0x0000, 0x41AC)  # 21.5 degC: low word first
    assert ascii_registers("AB", 2) == [0x4142, 0x0000]


def test_constructor_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        ParticleCounterSim(profile="climet")
    with pytest.raises(ValueError, match="unit_ids"):
        ParticleCounterSim(unit_ids=[0])
    with pytest.raises(ValueError, match="at most 4"):
        ParticleCounterSim(profile="metone6000", channels_um=[0.3, 0.5, 0.7, 1.0, 5.0])
    with pytest.raises(ValueError, match="transport"):
        ParticleCounterSim(transport="udp")
