"""Particle counts → particles/m³, the unit every cleanroom limit is written in.

Counters report raw counts per sample, cumulative by size (channel k counts every particle ≥ size k)
or differential (only those between size k and k+1). The concentration for size k is the cumulative
count divided by the sampled air volume; the volume is either read from the device or computed as
flow × sample duration. Any doubt in the inputs carries into the quality of the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.normalise import Normalised
from gateway.points import ParticleCounterSpec, VolumeSpec
from gateway.records import Quality

CUBIC_METRES = {"m3": 1.0, "L": 1e-3, "[ft_i]3": 0.028316846592}
FLOW_M3_PER_MIN = {"m3/min": 1.0, "L/min": 1e-3, "[ft_i]3/min": 0.028316846592}
MINUTES = {"s": 1 / 60, "min": 1.0}
UNIT = "/m3"


def concentration_parameter(size_um: float) -> str:
    """``particle_concentration_0_5um`` for 0.5 µm: one name per size, the same on every counter."""
    return "particle_concentration_" + f"{size_um:.1f}".replace(".", "_") + "um"


@dataclass(slots=True, frozen=True)
class Concentration:
    size_um: float
    parameter: str
    value: float | None
    quality: Quality
    detail: str | None
    #: The count channel this concentration was computed from (its source and times are reused).
    channel: Normalised


def sampled_volume_m3(volume: VolumeSpec, values: dict[str, Normalised]) -> tuple[float | None, Quality, str | None]:
    """The sample's air volume in m³, with the worst quality of what it was computed from."""
    if volume.volume_point is not None:
        item = values.get(volume.volume_point)
        if item is None:
            return None, Quality.BAD_CONFIGURATION_ERROR, f"volume point {volume.volume_point!r} was not read"
        if not isinstance(item.value, int | float) or isinstance(item.value, bool):
            return None, item.quality.worst(Quality.BAD), item.detail or "sampled volume has no value"
        return float(item.value) * CUBIC_METRES[volume.volume_unit], item.quality, item.detail
    assert volume.flow_point is not None and volume.duration_point is not None  # VolumeSpec checks this
    flow, duration = values.get(volume.flow_point), values.get(volume.duration_point)
    if flow is None or duration is None:
        return None, Quality.BAD_CONFIGURATION_ERROR, "flow or sample duration was not read"
    if not all(isinstance(i.value, int | float) and not isinstance(i.value, bool) for i in (flow, duration)):
        detail = flow.detail or duration.detail or "flow or sample duration has no value"
        return None, flow.quality.worst(duration.quality).worst(Quality.BAD), detail
    m3 = float(flow.value) * FLOW_M3_PER_MIN[volume.flow_unit] * float(duration.value) * MINUTES[volume.duration_unit]  # type: ignore[arg-type]
    return m3, flow.quality.worst(duration.quality), flow.detail or duration.detail


def concentrations(spec: ParticleCounterSpec, values: dict[str, Normalised]) -> list[Concentration]:
    """Particles/m³ ≥ each channel's size for one sample."""
    volume_m3, volume_quality, volume_detail = sampled_volume_m3(spec.volume, values)
    status = values.get(spec.status_point) if spec.status_point else None
    channels = sorted(spec.channels, key=lambda c: c.size_um)
    present = [(c, values[c.point]) for c in channels if c.point in values]
    out: list[Concentration] = []
    for i, (channel, item) in enumerate(present):
        parameter = concentration_parameter(channel.size_um)
        quality = item.quality.worst(volume_quality)
        if status is not None:
            quality = quality.worst(status.quality)
        detail = item.detail or volume_detail or (status.detail if status is not None else None)
        counted = present[i:] if spec.count_mode == "differential" else [(channel, item)]
        counts = [c.value for _, c in counted]
        if volume_m3 is None or any(not isinstance(n, int | float) or isinstance(n, bool) for n in counts):
            out.append(Concentration(channel.size_um, parameter, None, quality.worst(Quality.BAD), detail, item))
            continue
        if volume_m3 <= 0:
            out.append(Concentration(
                channel.size_um, parameter, None, Quality.BAD, "sampled volume is zero: no concentration", item
            ))
            continue
        total = sum(float(n) for n in counts)  # type: ignore[arg-type]
        out.append(Concentration(channel.size_um, parameter, total / volume_m3, quality, detail, item))
    return out
