"""The drain benchmark's figures and how they are printed: a table, the gateway/raw ratios, and how long one
hour of the site's records takes to drain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    sink: str
    path: str
    setting: str
    records: int
    wall_s: float
    cpu_s: float
    site_rate: float
    #: The receiver holds every seq of the backlog (and nothing else).
    complete: bool
    receiver_cpu_s: dict[str, float] = field(default_factory=dict)
    #: MQTT: seconds from the start until the subscriber had the last record.
    end_to_end_s: float | None = None
    failures: int = 0

    @property
    def rate(self) -> float:
        return self.records / self.wall_s

    @property
    def x_real_time(self) -> float:
        return self.rate / self.site_rate

    @property
    def cpu_us_per_record(self) -> float:
        return 1e6 * self.cpu_s / self.records

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"records_per_s": self.rate, "x_real_time": self.x_real_time,
                               "cpu_us_per_record": self.cpu_us_per_record}


def thousands(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def report(figures: Sequence[Figure], site_rate: int, profiled: bool, nodelay: bool) -> None:
    print(f"\n{'sink':<5} {'path':<18} {'setting':<13} {'records/s':>10} {'x real':>7} {'wall s':>7} "
          f"{'CPU s':>6} {'CPU %':>6} {'us/rec':>7}  receiver CPU, checks")
    for f in figures:
        receiver = ", ".join(f"{k} {v:.1f} s" for k, v in f.receiver_cpu_s.items())
        checks = "every seq received" if f.complete else "RECORDS MISSING: figure does not count"
        if f.end_to_end_s is not None:
            checks += f", subscriber had all after {f.end_to_end_s:.1f} s"
        if f.failures:
            checks += f", {f.failures} failed writes"
        print(f"{f.sink:<5} {f.path:<18} {f.setting:<13} {thousands(f.rate):>10} {f.x_real_time:>6.1f}x "
              f"{f.wall_s:>7.2f} {f.cpu_s:>6.2f} {100 * f.cpu_s / f.wall_s:>5.0f}% {f.cpu_us_per_record:>7.1f}  "
              f"{receiver}; {checks}")
    print()
    for raw, gw in pairs(figures):
        print(f"{gw.sink} {gw.setting:<13} gateway / raw loop  rate {gw.rate / raw.rate:.2f}   "
              f"CPU per record {gw.cpu_us_per_record:.1f} us vs {raw.cpu_us_per_record:.1f} us "
              f"({gw.cpu_us_per_record / raw.cpu_us_per_record:.1f}x)")
    print()
    for sink in ("http", "mqtt"):
        done = [f for f in figures if f.sink == sink and f.path.startswith("gateway") and f.complete]
        if not done:
            continue
        best = max(done, key=lambda f: f.rate)
        minutes = 3600 * site_rate / best.rate / 60
        print(f"{sink}: one hour of a {thousands(site_rate)} records/s site drains in {minutes:.1f} min "
              f"({best.x_real_time:.1f}x real time, {best.setting}; bar >= 20x)")
    if any(f.sink == "mqtt" for f in figures):
        setting = "true, as a site should" if nodelay else "false, as shipped"
        print(f"(mosquitto set_tcp_nodelay {setting}; see --broker-stock)")
    if profiled:
        print("(profiled run: the gateway rates are lowered by the profiler; measure without --profile)")


def pairs(figures: Sequence[Figure]) -> list[tuple[Figure, Figure]]:
    raw = {(f.sink, f.setting): f for f in figures if f.path.startswith("raw")}
    return [(raw[(f.sink, f.setting)], f) for f in figures
            if f.path.startswith("gateway") and (f.sink, f.setting) in raw]
