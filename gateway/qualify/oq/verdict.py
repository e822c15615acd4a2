"""A criterion's verdict, and the small figures its one line is written with (seq runs, timestamps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Verdict:
    passed: bool
    expected: str
    observed: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}: expected {self.expected}; observed {self.observed}"


def ranges(seqs: list[int], limit: int = 6) -> str:
    """``3, 7-9, 12`` for a reviewer; the first few runs only."""
    if not seqs:
        return "none"
    runs: list[tuple[int, int]] = []
    for s in sorted(seqs):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return shown + (f" and {len(runs) - limit} more run(s)" if len(runs) > limit else "")


def stamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
