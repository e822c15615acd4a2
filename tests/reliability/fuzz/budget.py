"""The fuzz suite's budget and tally: how many examples each codec gets, and what was run.

Short form (``make test``): 1 200 examples per codec. Long form: ``CGT_FUZZ_EXAMPLES=100000``
runs that many examples per codec, split over the codec's tests (every example mutates at least one
frame), with a per-test timeout that grows with them. Kept out of ``conftest.py`` so that the tests and
the conftest's end-of-run summary share one module.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "CGT_FUZZ_EXAMPLES"
#: Examples per codec in the short form.
SHORT_FORM = 1200
#: A generous bound on one example's cost, for the long form's per-test timeout.
WORST_EXAMPLE_S = 0.01


def examples_per_codec() -> int:
    given = os.environ.get(EXAMPLES_ENV, "").strip()
    if not given:
        return SHORT_FORM
    if not given.isdigit() or int(given) < 1:
        raise pytest.UsageError(f"{EXAMPLES_ENV} must be a whole number >= 1, not {given!r}")
    return int(given)


def budget(share: float) -> settings:
    """Hypothesis settings for one test that takes ``share`` of its codec's examples."""
    return settings(
        max_examples=max(1, math.ceil(examples_per_codec() * share)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def timeout_s(share: float) -> float:
    """The per-test timeout: the suite's 60 s, more when the long form asks for many examples."""
    return max(60.0, examples_per_codec() * share * WORST_EXAMPLE_S)


@dataclass
class Tally:
    """What one codec's fuzzers ran: examples, protocol units (frames, lines, replies) fed and mutated."""

    codec: str
    examples: int = 0
    units: int = 0
    mutated: int = 0
    seconds: float = 0.0
    tests: set[str] = field(default_factory=set)

    def add(self, units: int, mutated: int) -> None:
        self.examples += 1
        self.units += units
        self.mutated += mutated


TALLIES: dict[str, Tally] = {}


def tally(codec: str) -> Tally:
    """The tally of ``codec`` (one per codec, shared by its test modules)."""
    return TALLIES.setdefault(codec, Tally(codec))
