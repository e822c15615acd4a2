"""EU GMP Annex 1 (2022) Table 5 monitoring limits, used to pick a realistic mean count per grade.

The simulator carries its own copy of the table on purpose: the gateway has one too, and two independent
copies are how a typo in either shows up in the integration tests.

Only the 0.5 um and 5.0 um limits are tabulated. Other channel sizes are interpolated on a log-log line
through those two anchors, which is the ISO 14644-1 power law (C ~ D^-2.08) for every grade, because the
Table 5 pairs are themselves consistent with it (3 520 -> 29, 352 000 -> 2 930, ...).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Literal

Grade = Literal["A", "B", "C", "D"]
RoomState = Literal["at_rest", "in_operation"]

GRADES: tuple[Grade, ...] = ("A", "B", "C", "D")
ROOM_STATES: tuple[RoomState, ...] = ("at_rest", "in_operation")

#: (grade, state) -> (limit >= 0.5 um, limit >= 5.0 um), particles per m3.
#: Grade D in operation is "not predetermined" in Annex 1 (set by the site's risk assessment); the
#: simulator uses the at-rest values as its reference so that grade D still has a defined mean.
TABLE5_PER_M3: MappingProxyType[tuple[str, str], tuple[float, float]] = MappingProxyType(
    {
        ("A", "at_rest"): (3_520.0, 29.0),
        ("A", "in_operation"): (3_520.0, 29.0),
        ("B", "at_rest"): (3_520.0, 29.0),
        ("B", "in_operation"): (352_000.0, 2_930.0),
        ("C", "at_rest"): (352_000.0, 2_930.0),
        ("C", "in_operation"): (3_520_000.0, 29_300.0),
        ("D", "at_rest"): (3_520_000.0, 29_300.0),
        ("D", "in_operation"): (3_520_000.0, 29_300.0),
    }
)

CUBIC_FEET_PER_M3 = 35.314_666_7
LITRES_PER_CUBIC_FOOT = 28.316_846_6


def limit_per_m3(grade: str, room_state: str, size_um: float) -> float:
    """Maximum particles/m3 >= `size_um` for the grade and room state (interpolated between 0.5 and 5.0)."""
    try:
        at_05, at_50 = TABLE5_PER_M3[(grade, room_state)]
    except KeyError:
        raise ValueError(
            f"unknown grade/state {grade!r}/{room_state!r}: grade is one of {GRADES}, state one of {ROOM_STATES}"
        ) from None
    if size_um <= 0:
        raise ValueError(f"particle size must be positive, got {size_um}")
    if size_um == 0.5:
        return at_05
    if size_um == 5.0:
        return at_50  # exact table values at the anchors, not a round trip through logarithms
    slope = math.log(at_50 / at_05) / math.log(5.0 / 0.5)
    return at_05 * (size_um / 0.5) ** slope


def sampled_volume_m3(flow_cfm: float, sample_time_s: float) -> float:
    """Air volume drawn in one sample: flow (ft3/min) x time, in m3."""
    return flow_cfm * (sample_time_s / 60.0) / CUBIC_FEET_PER_M3
