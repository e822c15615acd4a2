"""The node map file: addresses in a namespace by URI, sampling options, program points, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.opcua import load_node_map
from gateway.config import PROJECT_CONFIG_DIR
from gateway.errors import ConfigError
from gateway.records import Kind

LADS = PROJECT_CONFIG_DIR / "nodemaps" / "lads-closed-processor.yaml"


def load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    load_node_map(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    return [p.replace(str(tmp_path / "map.yaml"), "MAP") for p in err.value.problems]


def test_the_lads_map_has_the_canonical_parameters() -> None:
    m = load_node_map(LADS)
    params = {p.parameter: p for p in m.points.values() if p.parameter}
    units = {
        "temperature": "Cel",
        "co2": "%",
        "ph": "[pH]",
        "dissolved_oxygen": "%",
        "agitation": "/min",
        "pressure": "kPa",
        "cell_density": "10*6/mL",
        "viability": "%",
        "program_progress": "%",
        "temperature_setpoint": "Cel",
        "co2_setpoint": "%",
    }
    for name, unit in units.items():
        assert params[name].unit == unit, name
    for name in (
        "door_open",
        "device_state",
        "functional_unit_state",
        "program_state",
        "program_step",
        "program_step_number",
        "alarm_temperature_deviation",
        "alarm_door_open",
    ):
        assert params[name].kind is Kind.STATE, name
    assert m.namespace_uri == "urn:cgt-gateway:sim:closed-processor"
    assert m.program is not None and m.points[m.program.lot].browse_path.endswith("ActiveProgram/SupervisoryJobId")
    assert all(p.browse_path and p.browse_path.startswith("DeviceSet/ClosedProcessor/") for p in m.points.values())


HEAD = "name: t\nnamespace_uri: urn:x\npoints:\n"


def test_a_point_needs_exactly_one_address(tmp_path: Path) -> None:
    assert problems(tmp_path, HEAD + "  a: {parameter: a}\n") == [
        "MAP:4: points.a: give browse_path or node_id (exactly one)"
    ]
    assert problems(tmp_path, HEAD + "  a: {browse_path: A/B, node_id: s=x}\n")[0].startswith("MAP:4: points.a:")


def test_node_ids_carry_no_namespace_index(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, HEAD + "  a: {node_id: ns=2;s=Temp}\n")
    assert "namespace_uri gives it" in p
    (p,) = problems(tmp_path, HEAD + "  a: {node_id: Temp}\n")
    assert "must start with i=, s=, g= or b=" in p
    load(tmp_path, HEAD + "  a: {node_id: s=Temp}\n  b: {node_id: i=1001}\n")


def test_browse_paths_have_no_empty_segment(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, HEAD + "  a: {browse_path: A//B}\n")
    assert "empty segment" in p


def test_sampling_options_are_checked(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, HEAD + "  a: {browse_path: A, deadband_abs: 1, deadband_percent: 2}\n")
    assert "not both" in p
    out = problems(
        tmp_path, HEAD + "  a: {browse_path: A, queue_size: 0}\n  b: {browse_path: B, sampling_interval_ms: -1}\n"
    )
    assert [o.split(":")[1] for o in out] == ["4", "5"]


def test_program_points_must_exist(tmp_path: Path) -> None:
    text = (
        "name: t\nnamespace_uri: urn:x\nprogram: {state: s, run_id: r, lot: nope}\n"
        "points:\n  s: {browse_path: S}\n  r: {browse_path: R}\n"
    )
    (p,) = problems(tmp_path, text)
    assert "program names points the map does not define: nope" in p


def test_a_map_needs_its_namespace_and_points(tmp_path: Path) -> None:
    out = problems(tmp_path, "name: t\npoints: {}\n")
    assert any("namespace_uri: field required" in o for o in out)
    assert problems(tmp_path, "- a\n") == [
        "MAP:1: (top level): a node map is a mapping with name:, namespace_uri:, points: ..."
    ]


def test_the_rotea_like_map_loads() -> None:
    m = load_node_map(PROJECT_CONFIG_DIR / "nodemaps" / "rotea-like.yaml")
    assert m.program is not None and m.program.is_active("Paused") and not m.program.is_active("Complete")
    assert all(p.browse_path and p.browse_path.startswith("DeviceSet/Rotea/") for p in m.points.values())
