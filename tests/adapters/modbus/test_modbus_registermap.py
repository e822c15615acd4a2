"""Register map files: the shipped maps load and say what they read; a broken map says where it is broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.modbus.registermap import ModbusPoint, RegisterMap, load_register_map
from gateway.config import PROJECT_CONFIG_DIR
from gateway.errors import ConfigError
from gateway.points import DeviceMap

MAPS = PROJECT_CONFIG_DIR / "registermaps"
SHIPPED = sorted(p.stem for p in MAPS.glob("*.yaml"))

CANONICAL = {
    "particle_count_0_3um", "particle_count_0_5um", "particle_count_1_0um", "particle_count_5_0um",
    "sample_duration", "air_flow", "sampled_volume", "temperature", "relative_humidity", "location_number",
    "laser_alert", "flow_alert", "count_overflow", "service_required", "sampler_error", "hardware_alert",
    "device_error", "device_state", "sampling_enabled",
}


def test_the_three_counter_maps_ship() -> None:
    assert {"lighthouse-remote", "metone-6000", "pms-airnet2"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_map_loads_as_a_particle_counter(name: str) -> None:
    rmap = load_register_map(MAPS / f"{name}.yaml")
    assert isinstance(rmap, DeviceMap) and rmap.name == name
    assert rmap.particle_counter is not None
    assert rmap.source_time is not None
    for key, point in rmap.points.items():
        assert point.name == key
        assert point.parameter is None or point.parameter in CANONICAL, point.parameter
        if point.parameter and point.parameter.startswith("particle_count_"):
            assert point.unit == "{particles}"
    # Written only where the device needs it: the shipped maps command nothing at connect.
    assert rmap.acquisition.on_connect_writes == []
    assert "[V]" in (MAPS / f"{name}.yaml").read_text() and "[A]" in (MAPS / f"{name}.yaml").read_text()


def test_lighthouse_map_says_floats_low_word_first_and_scales_flow() -> None:
    rmap = load_register_map(MAPS / "lighthouse-remote.yaml")
    assert (rmap.word_order, rmap.float_word_order) == ("big", "little")
    assert rmap.acquisition.mode == "latest_record"
    flow = rmap.points["air_flow"]
    assert (flow.table, flow.address, flow.scale, flow.unit) == ("holding", 22, 0.01, "[ft_i]3/min")
    assert rmap.points["count_0_3um"].address == 8  # 30009
    assert [c.size_um for c in rmap.particle_counter.channels] == [0.3, 0.5, 1.0, 5.0]  # type: ignore[union-attr]
    assert rmap.status[0].polarity == "active_alarm"


def test_airnet_map_inverts_its_active_good_bits() -> None:
    rmap = load_register_map(MAPS / "pms-airnet2.yaml")
    assert rmap.acquisition.mode == "queue"
    assert rmap.status[0].polarity == "active_good"
    assert rmap.points["laser_alert"].invert is True
    assert rmap.points["data_available"].table == "coil" and rmap.points["data_available"].address == 1
    assert rmap.points["sampled_volume"].scale == 0.1


def test_metone_map_is_live_keyed_on_the_sample_timestamp() -> None:
    rmap = load_register_map(MAPS / "metone-6000.yaml")
    assert rmap.acquisition.mode == "live"
    assert rmap.acquisition.sample_key == ["sample_timestamp"]  # type: ignore[union-attr]
    assert {e.point for e in rmap.expect} == {"concentration_mode", "count_mode_setting", "flow_units"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


BASE = """\
name: test
points:
  status: {table: holding, address: 0, type: bits}
  temp: {table: holding, address: 1, type: int16, parameter: temperature, unit: Cel, scale: 0.1}
"""


def test_a_minimal_map_defaults_to_live_big_endian() -> None:
    rmap = RegisterMap.model_validate(
        {"name": "m", "points": {"a": {"table": "holding", "address": 0}}}
    )
    assert rmap.acquisition.mode == "live" and rmap.word_order == "big" and rmap.float_word_order is None
    assert rmap.points["a"].type == "uint16" and rmap.points["a"].name == "a"


def test_a_broken_map_names_file_line_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  flow: {table: holdin, address: 70000}\n")
    with pytest.raises(ConfigError) as err:
        load_register_map(path)
    problems = err.value.problems
    assert f"{path}:5: points.flow.table: " in problems[0]
    assert any(p.startswith(f"{path}:5: points.flow.address: ") for p in problems)


def test_unknown_fields_and_bad_yaml_are_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"map.yaml:4: points.temp.adress: unknown field"):
        load_register_map(write(tmp_path, BASE.replace("address: 1", "adress: 1")))
    with pytest.raises(ConfigError, match=r"map.yaml:\d+: invalid YAML"):
        load_register_map(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ConfigError, match=r"map.yaml:1: \(top level\)"):
        load_register_map(write(tmp_path, "- a list\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_register_map(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  x: {table: coil, address: 0, type: uint16}\n", "must be bool"),
        ("  x: {table: holding, address: 0, type: bool}\n", "needs `bit`"),
        ("  x: {table: holding, address: 0, type: string}\n", "needs `count`"),
        ("  x: {table: holding, address: 0, type: uint32, count: 2}\n", "applies to string or bits"),
        ("  x: {table: holding, address: 0, type: uint16, word_order: little}\n", "32-bit values only"),
        ("  x: {table: holding, address: 0, type: int16, bit: 3}\n", "bool or a uint16 bit field"),
        ("  x: {table: holding, address: 0, type: uint16, bit: 12, width: 8}\n", "do not fit"),
        ("  x: {table: holding, address: 65535, type: uint32}\n", "runs past 65535"),
        ("  x: {table: holding, address: 0, type: uint16, invert: true}\n", "bool points only"),
        ("  x: {table: holding, address: 0, valid_min: 5, valid_max: 1}\n", "above valid_max"),
    ],
)
def test_inconsistent_points_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_register_map(write(tmp_path, BASE + extra))
    assert ":5: points.x" in err.value.problems[0]


def test_a_point_name_other_than_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"map.yaml:2: points: point 'x' says name 'y': the key is the name"):
        load_register_map(write(tmp_path, BASE + "  x: {table: holding, address: 0, name: y}\n"))


@pytest.mark.parametrize(
    ("section", "message", "where"),
    [
        ("source_time: {point: nope}\n", "'nope' is not a point", "source_time"),
        ("source_time: {point: temp}\n", "Unix seconds", "source_time"),
        ("status: [{point: status, polarity: active_alarm, bits: [{bit: 0, label: x, quality: Good}]}]\n",
         "must lower the quality", "status"),
        ("status: [{point: status, polarity: active_alarm, bits: [{bit: 16, label: x, quality: Bad}]}]\n",
         "outside 'status'", "status"),
        ("status: [{point: status, polarity: active_alarm, bits: [{bit: 0, label: x, quality: Bad, points: [q]}]}]\n",
         "'q' is not a point", "status"),
        ("status: [{point: status, polarity: sometimes, bits: [{bit: 0, label: x, quality: Bad}]}]\n",
         "active_alarm", "status.0.polarity"),
        ("expect: [{point: temp, value: 0, label: x, points: [nope]}]\n", "'nope' is not a point", "expect"),
        ("acquisition: {mode: live, sample_key: [nope]}\n", "'nope' is not a point", "acquisition"),
        ("acquisition: {mode: queue, available_point: status}\n", "must be a coil", "acquisition"),
        ("acquisition: {mode: sometimes}\n", "does not match any of the expected tags", "acquisition"),
        ("acquisition: {mode: latest_record, record_table: holding, status_point: status, new_data_bit: 2,"
         " record_count_point: temp, record_index_point: temp}\n", "must not be in the record table", "acquisition"),
        ("acquisition: {mode: latest_record, status_point: status, new_data_bit: 2, record_count_point: temp,"
         " record_index_point: temp}\n", "record_count_point an unsigned integer", "acquisition"),
        ("acquisition: {mode: live, on_connect_writes: [{point: temp, value: 70000, why: start}]}\n",
         "does not fit", "acquisition"),
        ("acquisition: {mode: live, on_connect_writes: [{point: temp, value: 1}]}\n",
         "field required", "acquisition.on_connect_writes.0.why"),
        ("particle_counter: {channels: [{point: nope, size_um: 0.5}], volume: {volume_point: temp}}\n",
         "does not define: nope", "(top level)"),
    ],
)
def test_references_and_sections_are_checked(tmp_path: Path, section: str, message: str, where: str) -> None:
    path = write(tmp_path, BASE + section)
    with pytest.raises(ConfigError, match=message) as err:
        load_register_map(path)
    assert any(f"map.yaml:5: {where}" in p or f": {where}: " in p for p in err.value.problems), err.value.problems


def test_latest_record_index_must_be_a_writable_16_bit_register() -> None:
    points = {
        "status": {"table": "holding", "address": 2, "type": "bits"},
        "count": {"table": "holding", "address": 23},
        "index": {"table": "input", "address": 24, "type": "int16"},
        "ts": {"table": "holding", "address": 30, "type": "uint32"},
    }
    acq = {"mode": "latest_record", "record_table": "coil", "status_point": "status", "new_data_bit": 2,
           "record_count_point": "count", "record_index_point": "index"}
    with pytest.raises(ValueError, match="16-bit holding register"):
        RegisterMap.model_validate({"name": "m", "points": points, "acquisition": acq})


def test_modbus_point_span() -> None:
    assert ModbusPoint(name="a", table="holding", address=0, type="float32").span == 2
    assert ModbusPoint(name="a", table="holding", address=0, type="string", count=8).span == 8
    assert ModbusPoint(name="a", table="coil", address=0, type="bool").span == 1
    assert ModbusPoint(name="a", table="input", address=0, type="bits", count=2).span == 2
