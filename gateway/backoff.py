"""Capped exponential backoff with jitter: written once, used by device supervisors and sink forwarders."""

from __future__ import annotations

import random
from collections.abc import Callable


def capped_backoff(initial_s: float, max_s: float, jitter: float, rng: random.Random) -> Callable[[int], float]:
    """Delay before retry ``n`` (0-based): initial × 2ⁿ, capped at ``max_s``, ± ``jitter`` so peers do not sync up."""

    def delay(attempt: int) -> float:
        base = min(max_s, initial_s * 2 ** min(attempt, 30))
        return base * (1 + jitter * (2 * rng.random() - 1))

    return delay
