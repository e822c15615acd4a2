"""The typical suite of DESIGN.md §7 "Footprint" as data: which simulated devices, in which simulator
processes, and the site file the gateway runs against them (used by bench/suite.py and bench/soak.py).

40 devices at 1 Hz: 24 Modbus particle counters (8 of each shipped register map), 4 OPC UA closed processors
(LADS), 10 SCPI thermocouple DAQs of 20 channels, a controlled-rate freezer and a BacT/ALERT, with a durable
journal, the operator API and an HTTP sink to the MES stand-in.

The simulated devices expose fewer values than real ones (a counter's shipped map has 11 to 16 tags, a
processor 26), so 40 of them read about 630 tags a second. To reach the bar's 2 000 tags each counter's map
is the shipped map plus extra ``uint16`` points (``register_<table>_<address>``) on registers its simulator
serves (spare record registers, configuration, labels, diagnostics), read in the same acquisition as the
sample: real requests, real decoding, one journalled record per point per sample, like a site that logs its
counters' diagnostics. ``tag_rates`` counts what the generated site reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.config import PROJECT_CONFIG_DIR, LoadedSite, load_site, substitute
from gateway.plugins import adapter_plugins

TARGET_TAGS_PER_S = 2000
#: The freezer's sample line carries these many values per sample (chamber, sample probe, set point, LN2
#: valve demand, step, step type, step elapsed); its map's other points change only with runs and alarms.
CRF_SAMPLE_TAGS = 7
#: A DAQ channel card of 20 thermocouples (the simulator's maximum), channels 101..120.
DAQ_CHANNELS = 20

#: Registers each counter's simulator serves, per table, where extra points may go (see the simulator's
#: README for the layouts). The ranges avoid nothing: addresses the shipped map uses are skipped below.
SPARE_REGISTERS: Mapping[str, tuple[str, Sequence[range]]] = {
    "lighthouse-remote": ("input", (range(16, 40), range(44, 73), range(74, 76))),
    "metone-6000": ("holding", (range(200, 239), range(0, 42), range(100, 143), range(146, 161))),
    "pms-airnet2": ("input", (range(1, 211),)),
}
COUNTER_PROFILES: Mapping[str, str] = {
    "lighthouse-remote": "lighthouse", "metone-6000": "metone6000", "pms-airnet2": "airnet2",
}


@dataclass(frozen=True)
class Plan:
    counters_per_map: int = 8
    processors: int = 4
    daqs: int = 10
    target_tags_per_s: int = TARGET_TAGS_PER_S
    #: The journal's retention (the soak keeps its journal bounded); None keeps everything.
    retention_days: float | None = None
    #: The journal's commit window (journal.commit_window_ms); 0 commits each read at once.
    commit_window_ms: float = 0

    @property
    def devices(self) -> int:
        return 3 * self.counters_per_map + self.processors + self.daqs + 2


def sim_groups(plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """Simulator entries (the site file's ``simulators:`` shape) by process: one process per kind of device."""
    counters = [
        {"name": f"pc-{short}-{i}", "kind": "particle-counter",
         "options": {"profile": profile, "transport": "tcp", "grade": "B", "state": "in_operation",
                     "sample_time_s": 1, "seed": 100 * n + i}}
        for n, (short, profile) in enumerate(_counter_kinds())
        for i in range(plan.counters_per_map)
    ]
    processors = [
        {"name": f"cp-{i}", "kind": "closed-processor",
         "options": {"profile": "lads", "time_scale": 60, "update_interval_s": 1.0, "seed": i,
                     "run_on_start": {"template_id": "CAR-T-STD", "lot_id": f"LOT-SUITE-{i:04d}"}}}
        for i in range(plan.processors)
    ]
    daqs = [
        {"name": f"daq-{i}", "kind": "scpi-daq",
         "options": {"transport": "tcp", "channels": list(range(101, 101 + DAQ_CHANNELS)),
                     "serial": f"SIM{i:06d}", "seed": i}}
        for i in range(plan.daqs)
    ]
    serial = [
        {"name": "crf", "kind": "freezer",
         "options": {"time_scale": 1, "sample_interval_s": 1, "seed": 1, "run_on_start": {"lot": "LOT-SUITE-CRF"}}},
        {"name": "bta", "kind": "bactalert",
         "options": {"time_scale": 3600, "protocol_days": 0.5, "reply_s": 2,
                     "bottles": [{"lot": "LOT-SUITE-0000", "specimen_id": f"W1234260000{i:02d}", "ttd_h": 4 + i}
                                 for i in range(1, 5)]}},
    ]
    return {"counters": counters, "processors": processors, "daqs": daqs, "serial": serial,
            "mes": [{"name": "mes", "kind": "mes", "options": {}}]}


def _counter_kinds() -> Iterator[tuple[str, str]]:
    for map_name, profile in COUNTER_PROFILES.items():
        yield map_name.split("-")[0], profile


def write_site(workdir: Path, plan: Plan, endpoints: Mapping[str, Mapping[str, Any]], api_port: int) -> Path:
    """The site file for ``endpoints``, with the counters' maps extended until the site reads the target."""
    site = workdir / "site.yaml"
    _write(workdir, plan, endpoints, api_port, extras={})
    rates = tag_rates(load_site(site, adapter_plugins()))
    missing = max(0, plan.target_tags_per_s - round(sum(r.per_s for r in rates)))
    _write(workdir, plan, endpoints, api_port, extras=_share(missing, plan))
    return site


def _share(missing: int, plan: Plan) -> dict[str, int]:
    """Extra points per counter of each map: the same for all, spilling over where a map runs out of registers."""
    room = {name: _room(name) for name in COUNTER_PROFILES}
    extras = dict.fromkeys(COUNTER_PROFILES, 0)
    left = missing
    while left > 0 and any(extras[n] < room[n] for n in extras):
        open_maps = [n for n in extras if extras[n] < room[n]]
        each = max(1, math.ceil(left / (plan.counters_per_map * len(open_maps))))
        for name in open_maps:
            add = min(each, room[name] - extras[name], math.ceil(left / plan.counters_per_map))
            extras[name] += add
            left -= add * plan.counters_per_map
            if left <= 0:
                break
    return extras


def _shipped(map_name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_CONFIG_DIR / "registermaps" / f"{map_name}.yaml").read_text()))


def _spare(map_name: str) -> list[int]:
    table, ranges = SPARE_REGISTERS[map_name]
    used = {p["address"] + k for p in _shipped(map_name)["points"].values() if p["table"] == table
            for k in range(2 if p["type"] in ("uint32", "int32", "float32") else 1)}
    return [a for r in ranges for a in r if a not in used]


def _room(map_name: str) -> int:
    return len(_spare(map_name))


def _suite_map(workdir: Path, map_name: str, extra: int) -> str:
    """The shipped map plus ``extra`` uint16 points on spare registers; returns its path relative to the site."""
    data = _shipped(map_name)
    table = SPARE_REGISTERS[map_name][0]
    for address in _spare(map_name)[:extra]:
        data["points"][f"reg_{address}"] = {
            "table": table, "type": "uint16", "address": address, "parameter": f"register_{table}_{address}",
            "unit": "1", "description": "suite bench: a spare register read with the sample",
        }
    data["description"] = f"{data['description']} (suite bench: +{extra} register points)"
    (workdir / "registermaps").mkdir(exist_ok=True)
    path = workdir / "registermaps" / f"{map_name}-suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=120))
    return f"registermaps/{path.name}"


def _daq_map(workdir: Path) -> str:
    """The shipped DAQ map (MEAS:TEMP? per scan) widened to a 20-channel card."""
    data = dict(yaml.safe_load((PROJECT_CONFIG_DIR / "visa-maps" / "scpi-temperature-daq.yaml").read_text()))
    channels = f"(@101:{100 + DAQ_CHANNELS})"
    data["name"] = "scpi-temperature-daq-20"
    data["on_connect"] = ["*CLS", f"UNIT:TEMP C,{channels}"]
    names = [f"ch{c}" for c in range(101, 101 + DAQ_CHANNELS)]
    data["scan"] = [{"query": f"MEAS:TEMP? TC,K,{channels}", "points": names}]
    data["points"] = {
        n: {"channel": n[2:], "parameter": f"probe_{n[2:]}_temperature", "unit": "Cel",
            "valid_min": -270, "valid_max": 1372}
        for n in names
    }
    (workdir / "visa-maps").mkdir(exist_ok=True)
    path = workdir / "visa-maps" / "scpi-temperature-daq-20.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=120))
    return f"visa-maps/{path.name}"


def _write(workdir: Path, plan: Plan, endpoints: Mapping[str, Mapping[str, Any]], api_port: int,
           extras: Mapping[str, int]) -> None:
    maps = {name: _suite_map(workdir, name, extras.get(name, 0)) for name in COUNTER_PROFILES}
    daq_map = _daq_map(workdir)
    groups = sim_groups(plan)
    area = {"site": "bench-plant", "area": "suite-1"}
    equipment: list[dict[str, Any]] = []
    for entry in groups["counters"]:
        name = entry["name"]
        map_name = next(m for m, p in COUNTER_PROFILES.items() if p == entry["options"]["profile"])
        equipment.append({
            "id": name.upper(), "class": "particle_counter", "kind": "modbus", "isa95": {**area, "unit": name},
            "transport": "tcp", "host": f"${{sim.{name}.host}}", "port": f"${{sim.{name}.port}}", "device_id": 1,
            "register_map": maps[map_name], "poll_interval_s": 1,
            "particle_limits": {"grade": "B", "state": "in_operation"},
        })
    for entry in groups["processors"]:
        name = entry["name"]
        equipment.append({
            "id": name.upper(), "class": "cell_processor", "kind": "opcua", "isa95": {**area, "unit": name},
            "endpoint": f"${{sim.{name}.endpoint}}", "node_map": "lads-closed-processor",
            "publishing_interval_ms": 1000,
        })
    for entry in groups["daqs"]:
        name = entry["name"]
        equipment.append({
            "id": name.upper(), "class": "cryo_storage", "kind": "visa", "isa95": {**area, "unit": name},
            "resource": f"${{sim.{name}.endpoint}}", "instrument_map": daq_map, "poll_interval_s": 1,
            "identity": {"manufacturer": "CGT Simulated Instruments", "model": "DAQ-4TC",
                         "serial": entry["options"]["serial"]},
        })
    equipment.append({
        "id": "CRF-1", "class": "controlled_rate_freezer", "kind": "crf", "isa95": {**area, "unit": "crf-1"},
        "port": "${sim.crf.serial_path}", "approved_profiles": ["classic-cell-therapy"], "silence_timeout_s": 5,
    })
    equipment.append({
        "id": "BTA-1", "class": "culture_reader", "kind": "astm", "isa95": {**area, "unit": "bactalert-1"},
        "port": "${sim.bta.serial_path}", "profile": "bactalert-lis2a2",
    })
    site = {
        "gateway": {"id": "gw-suite", "description": "typical suite footprint bench (bench/suite.py)"},
        "journal": {"path": "journal.sqlite", "synchronous": "full", "commit_window_ms": plan.commit_window_ms,
                    **({"retention_days": plan.retention_days} if plan.retention_days else {})},
        "api": {"listen": f"127.0.0.1:{api_port}", "users_file": "users.yaml"},
        "supervisor": {"backoff_initial_s": 0.5, "backoff_max_s": 5},
        "equipment": equipment,
        "sinks": [{"name": "mes", "type": "http", "url": "${sim.mes.endpoint}",
                   "batch": {"max_records": 500, "max_age_s": 1}}],
    }
    text = yaml.safe_dump(substitute(site, {k: dict(v) for k, v in endpoints.items()}), sort_keys=False, width=120)
    (workdir / "site.yaml").write_text(text)


@dataclass(frozen=True)
class TagRate:
    equipment_id: str
    device_class: str
    tags: int
    per_s: float
    how: str


def tag_rates(loaded: LoadedSite) -> list[TagRate]:
    """The tags each device of a site reads per second: mapped points with a parameter over the read interval."""
    out = []
    for eq in loaded.equipment:
        tags = sum(1 for p in loaded.maps[eq.id].points.values() if p.parameter)
        if eq.kind in ("modbus", "visa"):
            per_s, how = tags / eq.poll_interval_s, f"polled every {eq.poll_interval_s:g} s"
        elif eq.kind == "opcua":
            per_s, how = tags / (eq.publishing_interval_ms / 1000), "monitored items, sent on change"
        elif eq.kind == "crf":
            tags, per_s, how = CRF_SAMPLE_TAGS, float(CRF_SAMPLE_TAGS), "sample line every 1 s"
        else:
            per_s, how = 0.0, "results when a bottle is read"
        out.append(TagRate(eq.id, str(eq.equipment_class), tags, per_s, how))
    return out


def write_group(workdir: Path, name: str, entries: Sequence[Mapping[str, Any]]) -> Path:
    path = workdir / f"sims-{name}.json"
    path.write_text(json.dumps(list(entries)))
    return path
