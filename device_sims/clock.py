"""A simulated device's real-time clock: the host's wall clock plus how far the device's clock was set off
(``skew_s``) plus a ``clock_skew`` fault on top, which a test injects and clears without losing the setting.

The gateway compares device time with its own; the simulators make that comparison fail on purpose, and
this keeps the arithmetic of "set off, then jumped further, then put back" in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class DeviceClock:
    """``clock = DeviceClock(skew_s=3.0)``; ``clock.inject(120)`` jumps it, ``clock.clear()`` puts it back."""

    def __init__(self, skew_s: float = 0.0) -> None:
        #: How far the device's clock was set off the host's (configured, or by setting the clock).
        self.skew_s = float(skew_s)
        #: The clock_skew fault's jump on top of ``skew_s`` (0: no fault).
        self.fault_s = 0.0

    @property
    def offset_s(self) -> float:
        """How far the device's clock is off the host's now: the setting plus any fault."""
        return self.skew_s + self.fault_s

    @property
    def skewed(self) -> bool:
        """Whether a clock_skew fault is in force (what a simulator lists among its active faults)."""
        return self.fault_s != 0.0

    def inject(self, seconds: float) -> None:
        """The clock_skew fault: the clock jumps to ``seconds`` off its setting, until cleared."""
        self.fault_s = float(seconds)

    def clear(self) -> None:
        """End the clock_skew fault: the clock shows its setting again."""
        self.fault_s = 0.0

    def now(self) -> datetime:
        """What the device's clock shows, as an aware UTC datetime."""
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)
