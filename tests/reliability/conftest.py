"""Fixtures of the reliability suite: a seeded random source whose seed is printed, and the cycle count.

The short form (default) keeps the folder to about a minute and a half of ``make test``; the long form
runs more cycles: ``CGT_RELIABILITY_CYCLES=50 .venv/bin/pytest tests/reliability``. A failure prints
its seed; ``CGT_RELIABILITY_SEED=<seed>`` replays the same kill moments and flap timings.
"""

from __future__ import annotations

import os
import random

import pytest

CYCLES_ENV = "CGT_RELIABILITY_CYCLES"
SEED_ENV = "CGT_RELIABILITY_SEED"


def cycles(short_form: int) -> int:
    """How many kill / flap cycles to run: ``short_form`` unless CGT_RELIABILITY_CYCLES says more."""
    given = os.environ.get(CYCLES_ENV, "").strip()
    if not given:
        return short_form
    if not given.isdigit() or int(given) < 1:
        raise pytest.UsageError(f"{CYCLES_ENV} must be a whole number >= 1, not {given!r}")
    return int(given)


@pytest.fixture
def rng() -> random.Random:
    """A seeded random source. The seed is printed, so pytest shows it with a failure's captured output."""
    given = os.environ.get(SEED_ENV, "").strip()
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    print(f"reliability seed {seed} (replay: {SEED_ENV}={seed})")
    return random.Random(seed)


def timeout_for(n: int, *, per_cycle_s: float, base_s: float) -> float:
    """The per-test timeout for ``n`` cycles: the suite's 60 s for the short form, more for the long one."""
    return max(60.0, base_s + n * per_cycle_s)
