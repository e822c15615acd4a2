"""Config errors are one line each, `FILE:LINE: path.to.field: message`; the hash pins meaning, not layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import PROJECT_CONFIG_DIR, load_site, site_model
from gateway.errors import ConfigError
from gateway.plugins import adapter_plugins, sink_plugins
from tests.fakes import FakePlugin

GOOD = """\
gateway:
  id: gw-suite-1
journal:
  path: data/journal.sqlite
equipment:
  - id: TEMP-1
    class: freezer
    kind: fake
    points: [temperature]
  - id: TEMP-2
    class: freezer
    kind: fake
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def load(path: Path, **kw: object):
    return load_site(path, {"fake": FakePlugin()}, **kw)  # type: ignore[arg-type]


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    return info.value.problems


def test_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, GOOD))
    assert [e.id for e in loaded.equipment] == ["TEMP-1", "TEMP-2"]
    assert loaded.site.journal.path == tmp_path / "data" / "journal.sqlite"
    assert loaded.equipment[0].equipment_class == "freezer"
    assert len(loaded.config_hash) == 64


def test_hash_ignores_comments_and_layout_but_not_values(tmp_path: Path) -> None:
    base = load(write(tmp_path, GOOD)).config_hash
    relaid = GOOD.replace("points: [temperature]", "# the probe\n    points:\n      - temperature")
    assert load(write(tmp_path, relaid)).config_hash == base
    changed = GOOD.replace("gw-suite-1", "gw-suite-2")
    assert load(write(tmp_path, changed)).config_hash != base


def test_unknown_field_names_file_line_and_path(tmp_path: Path) -> None:
    text = GOOD.replace("    points: [temperature]\n", "    points: [temperature]\n    colour: red\n")
    [line] = problems(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'site.yaml'}:10: equipment.0.colour: unknown field")


def test_missing_field_is_reported_on_its_parent(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("    class: freezer\n    kind: fake\n", "    kind: fake\n", 1))
    assert line.endswith(":6: equipment.0.class: field required")


def test_every_problem_is_listed_not_just_the_first(tmp_path: Path) -> None:
    text = GOOD.replace("id: TEMP-1", "id: 'bad id!'").replace("id: gw-suite-1", "id: ''")
    lines = problems(tmp_path, text)
    assert len(lines) == 2
    assert any("gateway.id" in p for p in lines) and any("equipment.0.id" in p for p in lines)


def test_unknown_kind_lists_the_installed_adapters(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("kind: fake\n    points", "kind: opcua\n    points"))
    assert ":8: equipment.0.kind: unknown kind 'opcua' (installed adapters: fake)" in line


def test_duplicate_equipment_ids(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("TEMP-2", "TEMP-1"))
    assert ":10: equipment.1.id: equipment id 'TEMP-1' is used twice" in line


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD.replace("    class: freezer\n", "    class: freezer\n    class: cpu\n", 1))
    assert "duplicate key 'class'" in line and ":8:" in line


def test_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    [line] = problems(tmp_path, GOOD + "  - id: [unclosed\n")
    assert "invalid YAML" in line and ":14:" in line


def test_bad_number_and_range(tmp_path: Path) -> None:
    text = GOOD.replace("    kind: fake\n", "    kind: fake\n    poll_interval_s: -1\n", 1)
    [line] = problems(tmp_path, text)
    assert "equipment.0.poll_interval_s: Input should be greater than 0" in line


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_simulator_placeholders_take_endpoints_and_keep_types(tmp_path: Path) -> None:
    text = GOOD + "    poll_interval_s: ${sim.pc.port}\nsimulators:\n  - {name: pc, kind: x}\n"
    loaded = load(write(tmp_path, text), sim_endpoints={"pc": {"port": 5, "host": "h", "serial_path": None,
                                                              "endpoint": "e"}})
    assert loaded.equipment[1].poll_interval_s == 5
    stand_in = load(write(tmp_path, text))
    assert stand_in.config_hash == loaded.config_hash  # ports a simulator binds do not change the hash


def test_committed_json_schema_matches_the_models() -> None:
    """config/schema/site.schema.json is generated (`cgt-gateway schema -o ...`); it must not drift."""
    committed = json.loads((PROJECT_CONFIG_DIR / "schema" / "site.schema.json").read_text())
    current = site_model(adapter_plugins(), sink_plugins()).model_json_schema(by_alias=True)
    regenerate = "regenerate: cgt-gateway schema -o config/schema/site.schema.json"
    assert committed == json.loads(json.dumps(current)), regenerate


def test_a_plugin_that_fails_to_load_is_left_out_and_named_when_a_site_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    from gateway import plugins

    real = plugins.entry_points

    def with_a_broken_one(group: str) -> list[EntryPoint]:
        found = list(real(group=group))
        if group == plugins.ADAPTER_GROUP:
            found.append(EntryPoint("spectro", "adapters.no_such_module:plugin", group))
        return found

    monkeypatch.setattr(plugins, "entry_points", with_a_broken_one)
    monkeypatch.setattr(plugins, "_BROKEN", {})
    loaded = plugins._load(plugins.ADAPTER_GROUP, "kind")
    assert "modbus" in loaded and "spectro" not in loaded  # the others still load
    site = tmp_path / "site.yaml"
    site.write_text("gateway: {id: gw}\nequipment:\n  - {id: SP-1, class: spectrometer, kind: spectro}\n")
    with pytest.raises(ConfigError) as err:
        load_site(site, loaded)
    (problem,) = err.value.problems
    assert f"{site}:3: equipment.0.kind: kind 'spectro' is installed but failed to load (ModuleNotFoundError" in problem
    assert "reinstall" in problem
