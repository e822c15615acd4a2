"""The thermal side of the simulated DAQ: probes in an LN₂ vapour-phase dewar or a dry shipper. Pure.

Each channel is a probe at a height in the dewar and relaxes (first order, exact exponential steps)
towards a target that depends on what happens to the dewar:

- LN₂ present, lid closed: the probe's equilibrium, −190 °C near the liquid to about −160 °C at the
  neck (the default spread of four probes), with a few minutes' time constant;
- lid open: warm air falls in; the target moves towards ``lid_c`` (the top probe fully, the bottom one
  a third of the way) with a fast time constant, and recovers slowly once the lid closes;
- LN₂ run out: every probe warms towards ambient with a time constant of hours, so a dry shipper
  crosses −150 °C some three-quarters of an hour after the last liquid boils off (the default).

Times given to the model are the caller's clock in seconds; ``time_scale`` simulated seconds pass per
such second, so a demo can show hours in minutes. Every duration in the model is simulated seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_CHANNELS = (101, 102, 103, 104)
#: Equilibria of probes from the bottom of the vapour column to the neck.
DEFAULT_EQUILIBRIA_C = (-190.0, -180.7, -171.3, -162.0)


@dataclass(frozen=True)
class DewarConfig:
    """Behaviour as data: the probes, where they sit, and how fast the dewar answers to events."""

    channels: tuple[int, ...] = DEFAULT_CHANNELS
    equilibria_c: tuple[float, ...] = DEFAULT_EQUILIBRIA_C
    ambient_c: float = 20.0
    lid_c: float = -60.0
    cool_tau_s: float = 600.0
    lid_tau_s: float = 45.0
    warm_tau_s: float = 12_600.0
    noise_c: float = 0.05
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be distinct numbers, got {list(self.channels)}")
        if len(self.equilibria_c) != len(self.channels):
            raise ValueError(
                f"give one equilibrium temperature per channel ({len(self.channels)}), got {len(self.equilibria_c)}"
            )
        if min(self.cool_tau_s, self.lid_tau_s, self.warm_tau_s, self.time_scale) <= 0 or self.noise_c < 0:
            raise ValueError("time constants and time_scale must be > 0 and noise_c >= 0")


def spread(count: int, bottom_c: float = -190.0, top_c: float = -162.0) -> tuple[float, ...]:
    """Equilibria for ``count`` probes evenly from the bottom of the vapour column to the neck."""
    if count == 1:
        return (bottom_c,)
    return tuple(round(bottom_c + (top_c - bottom_c) * i / (count - 1), 1) for i in range(count))


@dataclass
class Forced:
    """A scripted excursion: channels read ``temperature_c`` until ``until`` (simulated seconds)."""

    temperature_c: float
    until: float
    channels: frozenset[int]


@dataclass
class DewarModel:
    """The probes' true temperatures over simulated time. Advance it with the caller's clock."""

    config: DewarConfig
    rng: random.Random = field(default_factory=random.Random)
    start: float = 0.0

    def __post_init__(self) -> None:
        self.temperatures_c = dict(zip(self.config.channels, self.config.equilibria_c, strict=True))
        self.sim_time = 0.0
        self.ln2_present = True
        self.lid_open_until: float | None = None
        self.forced: list[Forced] = []
        #: Temperatures the next measurements read, oldest first, one per measurement (every channel the same).
        self.scripted: list[float] = []

    # -- events ------------------------------------------------------------------------------------
    def open_lid(self, now: float, duration_s: float) -> None:
        self.advance(now)
        self.lid_open_until = self.sim_time + duration_s

    def run_dry(self, now: float) -> None:
        """The LN₂ is gone: from now on the dewar warms towards ambient."""
        self.advance(now)
        self.ln2_present = False

    def refill(self, now: float) -> None:
        self.advance(now)
        self.ln2_present = True

    def force(self, now: float, temperature_c: float, duration_s: float, channels: Sequence[int] | None) -> None:
        self.advance(now)
        chosen = frozenset(channels) if channels else frozenset(self.config.channels)
        unknown = chosen - set(self.config.channels)
        if unknown:
            raise ValueError(f"no channel {sorted(unknown)} here; channels: {list(self.config.channels)}")
        self.forced.append(Forced(temperature_c, self.sim_time + duration_s, chosen))

    # -- time ----------------------------------------------------------------------------------------
    def sim_time_at(self, now: float) -> float:
        return max(0.0, (now - self.start) * self.config.time_scale)

    def advance(self, now: float) -> None:
        """Bring the temperatures to ``now``, splitting at the lid closing so each step is exact."""
        target_time = self.sim_time_at(now)
        while self.sim_time < target_time:
            end = target_time
            if self.lid_open_until is not None and self.sim_time < self.lid_open_until < end:
                end = self.lid_open_until
            self._relax(end - self.sim_time)
            self.sim_time = end
            if self.lid_open_until is not None and self.sim_time >= self.lid_open_until:
                self.lid_open_until = None
        self.forced = [f for f in self.forced if f.until > self.sim_time]

    def _relax(self, dt: float) -> None:
        cfg = self.config
        lid = self.lid_open_until is not None
        count = len(cfg.channels)
        for i, channel in enumerate(cfg.channels):
            if not self.ln2_present:
                target, tau = cfg.ambient_c, cfg.warm_tau_s
            else:
                target, tau = cfg.equilibria_c[i], cfg.cool_tau_s
            if lid:  # the top probe (last) sees the full draught, the bottom one a third of it
                weight = 1.0 if count == 1 else 1 / 3 + (2 / 3) * i / (count - 1)
                target, tau = target + weight * (cfg.lid_c - target), cfg.lid_tau_s
            t = self.temperatures_c[channel]
            self.temperatures_c[channel] = target + (t - target) * math.exp(-dt / tau)

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def lid_open(self) -> bool:
        return self.lid_open_until is not None

    def measure(self, now: float, channels: Sequence[int]) -> list[float]:
        """What the probes read now, in °C: the true temperature plus noise, or a scripted value."""
        self.advance(now)
        if self.scripted:
            return [self.scripted.pop(0)] * len(channels)
        out = []
        for channel in channels:
            forced = next((f for f in reversed(self.forced) if channel in f.channels), None)
            if forced is not None:
                out.append(forced.temperature_c)
                continue
            noise = self.rng.gauss(0.0, self.config.noise_c) if self.config.noise_c else 0.0
            out.append(self.temperatures_c[channel] + noise)
        return out
