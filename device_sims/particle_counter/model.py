"""The counting model of one particle counter: a sample clock, Poisson counts and a record buffer.

The model knows nothing about Modbus. A profile renders it into registers, and the simulator drives its
clock, so the same model serves three register layouts and two transports. Time comes in two kinds and
they are kept apart on purpose: scheduling uses the event loop's monotonic clock (`now` arguments), while
record timestamps use the device's wall clock (Unix seconds plus any skew), which is allowed to be wrong.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .faults import UnitFaults
from .limits import limit_per_m3, sampled_volume_m3
from .registers import U32_MAX

#: If the loop falls this many sample periods behind, the clock skips ahead instead of catching up.
MAX_CATCH_UP_SAMPLES = 100


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a rounded normal for large ones.

    The normal approximation is exact enough above a mean of 30 for count data and keeps the cost
    constant for grade D means in the tens of thousands; no numpy needed.
    """
    if mean <= 0.0:
        return 0
    if mean < 30.0:
        threshold = math.exp(-mean)
        k = 0
        product = rng.random()
        while product > threshold:
            k += 1
            product *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


@dataclass(frozen=True)
class Sample:
    """One completed sample, as the device stores it. Counts are cumulative raw counts (>= size)."""

    seq: int
    timestamp: int
    sample_time_s: float
    flow_cfm: float
    volume_m3: float
    location: int
    counts: tuple[int, ...]
    over_limit: tuple[bool, ...]
    laser_alert: bool
    flow_alert: bool
    overflow: bool
    temperature_c: float
    rh_pct: float

    def differential(self) -> tuple[int, ...]:
        """Counts per size bin (channel k minus channel k+1); the last bin is open-ended."""
        tail = (*self.counts[1:], 0)
        return tuple(c - n for c, n in zip(self.counts, tail, strict=True))


@dataclass(frozen=True)
class CounterConfig:
    """The fixed settings of one counter; sample and hold time may later change through registers."""

    channels_um: tuple[float, ...]
    grade: str
    room_state: str
    sample_time_s: float
    buffer_capacity: int
    hold_time_s: float = 0.0
    flow_cfm: float = 1.0
    location: int = 1
    fraction_of_limit: float = 0.2
    autostart: bool = True

    def __post_init__(self) -> None:
        if not self.channels_um or list(self.channels_um) != sorted(set(self.channels_um)):
            raise ValueError(f"channels_um must be strictly increasing sizes, got {self.channels_um}")
        if self.sample_time_s <= 0:
            raise ValueError(f"sample_time_s must be > 0, got {self.sample_time_s}")
        if self.buffer_capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {self.buffer_capacity}")
        if not 0.0 < self.fraction_of_limit < 1.0:
            raise ValueError(f"fraction_of_limit must be within (0, 1), got {self.fraction_of_limit}")
        limit_per_m3(self.grade, self.room_state, self.channels_um[0])  # validates grade and state


@dataclass(frozen=True)
class CounterState:
    """A snapshot of one counter for assertions: what it produced, holds, lost and suffers from."""

    unit_id: int
    profile: str
    grade: str
    room_state: str
    running: bool
    sampling: bool
    sample_time_s: float
    channels_um: tuple[float, ...]
    samples_produced: int
    queue_length: int
    drops: int
    pops: int
    restarts: int
    new_data: bool
    clock_skew_s: float
    faults_active: frozenset[str]
    current_record: Sample | None
    oldest_record: Sample | None

    @property
    def last_counts(self) -> tuple[int, ...]:
        """Cumulative counts of the newest record (empty before the first sample)."""
        return self.current_record.counts if self.current_record else ()


class CounterModel:
    """One counter's behaviour. All methods are synchronous and cheap: they run on the event loop."""

    def __init__(
        self,
        config: CounterConfig,
        rng: random.Random,
        *,
        skew_s: float = 0.0,
        wall_clock: Callable[[], float] = time.time,
        on_schedule_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.faults = UnitFaults()
        self.sample_time_s = config.sample_time_s
        self.hold_time_s = config.hold_time_s
        self.location = config.location
        self.buffer: deque[Sample] = deque()
        self.running = False
        self.next_due: float | None = None
        self.samples_produced = 0
        self.drops = 0
        self.pops = 0
        self.restarts = 0
        self.new_data = False
        self._rng = rng
        self._wall_clock = wall_clock
        self._on_schedule_change = on_schedule_change
        self._base_skew_s = skew_s
        self._seq = 0
        self._sample_started_at: float | None = None
        self._manual_started_at: float | None = None
        self._last_counts: tuple[int, ...] | None = None

    # -- clock ---------------------------------------------------------------------------------
    def device_time(self) -> float:
        """The device's idea of Unix time: the host clock plus the configured and injected skew."""
        return self._wall_clock() + self._base_skew_s + self.faults.clock_skew_s

    def clock_skew_s(self) -> float:
        """How far the device clock is from the host clock, in seconds."""
        return self._base_skew_s + self.faults.clock_skew_s

    def set_device_time(self, unix_s: float) -> None:
        """Set the RTC, as a host does with a 'set clock' command; injected skew stays on top."""
        self._base_skew_s = unix_s - self._wall_clock() - self.faults.clock_skew_s

    # -- run control ---------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Start automatic sampling; a new sample begins now."""
        self.running = True
        self._manual_started_at = None
        self._begin_sample(now)

    def stop(self) -> None:
        """Stop sampling and abort the sample in progress (it is not recorded)."""
        self.running = False
        self._sample_started_at = None
        self.next_due = None
        self._on_schedule_change()

    def set_timing(self, now: float, *, sample_time_s: float | None = None, hold_time_s: float | None = None) -> None:
        """Change sample or hold time. Like the instruments, this restarts the sample in progress."""
        if sample_time_s is not None:
            if sample_time_s <= 0:
                raise ValueError(f"sample time must be > 0, got {sample_time_s}")
            self.sample_time_s = sample_time_s
        if hold_time_s is not None:
            self.hold_time_s = max(0.0, hold_time_s)
        if self.running:
            self._begin_sample(now)

    def sampling(self, now: float) -> bool:
        """True while air is being counted (running and not in the hold period, or a manual sample)."""
        if self._manual_started_at is not None:
            return True
        return self.running and self._sample_started_at is not None and self._sample_started_at <= now

    def manual_start(self, now: float) -> None:
        """Begin a manual sample; its length is whatever elapses until `manual_stop`."""
        self.stop()
        self._manual_started_at = now

    def manual_stop(self, now: float) -> Sample | None:
        """End a manual sample and record it (None if no manual sample was running)."""
        if self._manual_started_at is None:
            return None
        elapsed = max(now - self._manual_started_at, 1e-3)
        self._manual_started_at = None
        return self._produce(elapsed)

    def advance(self, now: float) -> int:
        """Complete every sample that is due by `now`; returns how many were recorded."""
        produced = 0
        while self.running and self.next_due is not None and self.next_due <= now:
            period = self.sample_time_s + self.hold_time_s
            if now - self.next_due > MAX_CATCH_UP_SAMPLES * period:
                self._begin_sample(now)
                break
            self._produce(self.sample_time_s)
            produced += 1
            self._sample_started_at = self.next_due + self.hold_time_s
            self.next_due = self._sample_started_at + self.sample_time_s
        return produced

    def restart(self, now: float) -> None:
        """A power cycle: buffer, queue, record numbering and status flags reset.

        The RTC and the sample/hold settings survive, as they do in the instruments' non-volatile memory.
        """
        self.buffer.clear()
        self.new_data = False
        self._seq = 0
        self._last_counts = None
        self._manual_started_at = None
        self.restarts += 1
        if self.config.autostart:
            self.start(now)
        else:
            self.stop()

    # -- buffer --------------------------------------------------------------------------------
    def clear_buffer(self) -> None:
        """Delete every stored record (Lighthouse command 3, AirNet 'clear queue')."""
        self.buffer.clear()
        self.new_data = False

    def pop(self) -> Sample | None:
        """Remove and return the oldest record (AirNet's 'write 0 to data available')."""
        if not self.buffer:
            return None
        self.pops += 1
        return self.buffer.popleft()

    def snapshot(self, unit_id: int, profile: str, now: float, link_faults: frozenset[str]) -> CounterState:
        """A frozen copy of the state, so a test's assertion cannot race the sample clock."""
        return CounterState(
            unit_id=unit_id,
            profile=profile,
            grade=self.config.grade,
            room_state=self.config.room_state,
            running=self.running,
            sampling=self.sampling(now),
            sample_time_s=self.sample_time_s,
            channels_um=self.config.channels_um,
            samples_produced=self.samples_produced,
            queue_length=len(self.buffer),
            drops=self.drops,
            pops=self.pops,
            restarts=self.restarts,
            new_data=self.new_data,
            clock_skew_s=self.clock_skew_s(),
            faults_active=self.faults.active() | link_faults,
            current_record=self.buffer[-1] if self.buffer else None,
            oldest_record=self.buffer[0] if self.buffer else None,
        )

    # -- internals -----------------------------------------------------------------------------
    def _begin_sample(self, now: float) -> None:
        self._sample_started_at = now
        self.next_due = now + self.sample_time_s
        self._on_schedule_change()

    def _produce(self, sample_time_s: float) -> Sample:
        faults = self.faults
        flow_cfm = self.config.flow_cfm * (faults.flow_fraction if faults.flow_fraction is not None else 1.0)
        volume = sampled_volume_m3(flow_cfm, sample_time_s)
        if faults.scripted_counts:
            counts = (faults.scripted_counts.pop(0),) * len(self.config.channels_um)
        elif faults.frozen and self._last_counts is not None:
            counts = self._last_counts
        else:
            counts = self._draw_counts(volume)
        self._last_counts = counts
        sizes = self.config.channels_um
        limits = [limit_per_m3(self.config.grade, self.config.room_state, s) for s in sizes]
        self._seq += 1
        sample = Sample(
            seq=self._seq,
            timestamp=int(self.device_time()),
            sample_time_s=sample_time_s,
            flow_cfm=flow_cfm,
            volume_m3=volume,
            location=self.location,
            counts=tuple(min(c, U32_MAX) for c in counts),
            over_limit=tuple(volume > 0 and c / volume > lim for c, lim in zip(counts, limits, strict=True)),
            laser_alert=faults.laser_alert,
            flow_alert=faults.flow_fraction is not None,
            overflow=any(c > U32_MAX for c in counts),
            temperature_c=round(20.0 + self._rng.gauss(0.0, 0.15), 1),
            rh_pct=round(45.0 + self._rng.gauss(0.0, 0.8), 1),
        )
        if len(self.buffer) >= self.config.buffer_capacity:
            self.buffer.popleft()
            self.drops += 1
        self.buffer.append(sample)
        self.samples_produced += 1
        self.new_data = True
        return sample

    def _draw_counts(self, volume_m3: float) -> tuple[int, ...]:
        """Cumulative counts: Poisson per size bin, then summed from the largest size down.

        Drawing bins (not cumulative channels) keeps channel k >= channel k+1, as on a real counter.
        During an excursion the mean rises to `factor` x the limit and every channel is held above its
        limit, so a test can rely on the excursion being visible even in a very short sample.
        """
        cfg, faults = self.config, self.faults
        limits = [limit_per_m3(cfg.grade, cfg.room_state, s) for s in cfg.channels_um]
        excursion = faults.excursion_samples_left > 0
        fraction = faults.excursion_factor if excursion else cfg.fraction_of_limit
        cumulative_means = [fraction * lim * volume_m3 for lim in limits]
        tail = [*cumulative_means[1:], 0.0]
        bins = [poisson(self._rng, max(0.0, m - n)) for m, n in zip(cumulative_means, tail, strict=True)]
        counts = [sum(bins[k:]) for k in range(len(bins))]
        if excursion:
            faults.excursion_samples_left -= 1
            floor_above = 0
            for k in reversed(range(len(counts))):
                floor_above = max(counts[k], math.floor(limits[k] * volume_m3) + 1, floor_above)
                counts[k] = floor_above
        return tuple(counts)
