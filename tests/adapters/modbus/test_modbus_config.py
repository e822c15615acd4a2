"""The `kind: modbus` equipment entry: strict, cross-checked, and located in the site file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.modbus import ModbusEquipmentConfig, plugin
from adapters.modbus.config import register_map_path
from gateway.config import PROJECT_CONFIG_DIR, EquipmentConfig, load_site
from gateway.errors import ConfigError

TCP = {"id": "PC-1", "class": "particle_counter", "kind": "modbus", "transport": "tcp", "host": "10.0.0.5",
       "port": 502, "device_id": 1, "register_map": "lighthouse-remote"}
RTU = {"id": "PC-2", "class": "particle_counter", "kind": "modbus", "transport": "rtu",
       "serial_port": "/dev/ttyUSB0", "device_id": 7, "register_map": "metone-6000"}


def validate(data: dict[str, Any], **context: Any) -> ModbusEquipmentConfig:
    return ModbusEquipmentConfig.model_validate(data, context=context or None)


def messages(exc: ValidationError) -> str:
    return "\n".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def test_fields_and_defaults() -> None:
    eq = validate(TCP)
    assert (eq.timeout_s, eq.retries, eq.poll_interval_s) == (1.0, 0, 1.0)
    assert eq.endpoint == "modbus+tcp://10.0.0.5:502"
    assert eq.register_map_path == PROJECT_CONFIG_DIR / "registermaps" / "lighthouse-remote.yaml"
    rtu = validate(RTU)
    assert (rtu.baudrate, rtu.parity, rtu.stopbits, rtu.bytesize) == (19200, "N", 1, 8)
    assert rtu.endpoint == "modbus+rtu:///dev/ttyUSB0"
    assert set(ModbusEquipmentConfig.model_fields) >= {
        "transport", "host", "port", "serial_port", "baudrate", "parity", "stopbits", "bytesize", "device_id",
        "register_map", "timeout_s", "retries"}
    own = set(ModbusEquipmentConfig.model_fields) - set(EquipmentConfig.model_fields) | {"kind"}
    assert all(ModbusEquipmentConfig.model_fields[n].description for n in own)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": None}, "transport tcp needs host"),
        ({"port": None}, "transport tcp needs port"),
        ({"host": None, "port": None}, "needs host and port"),
        ({"baudrate": 9600}, "baudrate apply to transport rtu"),
        ({"serial_port": "/dev/ttyS0"}, "serial_port apply to transport rtu"),
        ({"port": 0}, "greater than or equal to 1"),
        ({"port": 65536}, "less than or equal to 65535"),
        ({"device_id": 0}, "greater than or equal to 1"),
        ({"device_id": 248}, "less than or equal to 247"),
        ({"transport": "udp"}, "'tcp' or 'rtu'"),
        ({"timeout_s": 0}, "greater than 0"),
        ({"retries": -1}, "greater than or equal to 0"),
        ({"kind": "opcua"}, "'modbus'"),
        ({"unit": 1}, "Extra inputs are not permitted"),
        ({"register_map": "no-such-map"}, "register map 'no-such-map' not found"),
    ],
)
def test_tcp_entries_are_checked(change: dict[str, Any], message: str) -> None:
    data = {k: v for k, v in {**TCP, **change}.items() if v is not None}
    with pytest.raises(ValidationError) as err:
        validate(data)
    assert message in messages(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serial_port": None}, "transport rtu needs serial_port"),
        ({"host": "10.0.0.1"}, "host apply to transport tcp"),
        ({"port": 502}, "port apply to transport tcp"),
        ({"parity": "X"}, "'N', 'E' or 'O'"),
        ({"stopbits": 3}, "1 or 2"),
        ({"bytesize": 9}, "7 or 8"),
        ({"baudrate": 0}, "greater than 0"),
    ],
)
def test_rtu_entries_are_checked(change: dict[str, Any], message: str) -> None:
    data = {k: v for k, v in {**RTU, **change}.items() if v is not None}
    with pytest.raises(ValidationError) as err:
        validate(data)
    assert message in messages(err.value)


def test_map_names_and_paths_resolve(tmp_path: Path) -> None:
    assert register_map_path("metone-6000", None) == PROJECT_CONFIG_DIR / "registermaps" / "metone-6000.yaml"
    assert register_map_path("x", {"project_config_dir": tmp_path}) == tmp_path / "registermaps" / "x.yaml"
    assert register_map_path("maps/x.yaml", {"config_dir": tmp_path}) == tmp_path / "maps" / "x.yaml"
    assert register_map_path("/abs/x.yaml", {"config_dir": tmp_path}) == Path("/abs/x.yaml")
    (tmp_path / "mine.yaml").write_text((PROJECT_CONFIG_DIR / "registermaps" / "pms-airnet2.yaml").read_text())
    eq = validate({**TCP, "register_map": "mine.yaml"}, config_dir=tmp_path)
    assert eq.register_map_path == tmp_path / "mine.yaml"
    assert plugin.device_map(eq).name == "pms-airnet2"
    assert plugin.device_map(eq) is plugin.device_map(eq)  # loaded once: the map checked is the map run


SITE = """\
gateway: {{id: gw-test}}
equipment:
  - id: PC-1
    class: particle_counter
    kind: modbus
    transport: tcp
    host: 127.0.0.1
{port}    device_id: 1
    register_map: {register_map}
"""


def test_site_file_errors_name_file_and_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(port="", register_map="lighthouse-remote"))
    with pytest.raises(ConfigError) as err:
        load_site(site, {"modbus": plugin})
    assert err.value.problems == [f"{site}:3: equipment.0: transport tcp needs port"]

    site.write_text(SITE.format(port="    port: 502\n", register_map="nowhere"))
    with pytest.raises(ConfigError, match=rf"{site}:10: equipment.0.register_map: register map 'nowhere' not found"):
        load_site(site, {"modbus": plugin})


def test_a_broken_map_is_reported_through_the_site_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\npoints:\n  a: {table: holding, address: -1}\n")
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(port="    port: 502\n", register_map="bad.yaml"))
    with pytest.raises(ConfigError) as err:
        load_site(site, {"modbus": plugin})
    (problem,) = err.value.problems
    assert f"{tmp_path / 'bad.yaml'}:3: points.a.address: " in problem  # located in the map file itself


def test_a_good_site_loads_with_its_map(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(port="    port: 502\n", register_map="lighthouse-remote"))
    loaded = load_site(site, {"modbus": plugin})
    assert loaded.maps["PC-1"].name == "lighthouse-remote"
    assert loaded.equipment_by_id("PC-1").register_map == "lighthouse-remote"


def test_the_sample_entries_load(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[3] / "adapters" / "modbus" / "sample.yaml"
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "airnet2-suite3.yaml").write_text(
        (PROJECT_CONFIG_DIR / "registermaps" / "pms-airnet2.yaml").read_text())
    indented = "".join(f"  {line}" for line in sample.read_text().splitlines(keepends=True))
    site = tmp_path / "site.yaml"
    site.write_text("gateway: {id: gw-test}\nequipment:\n" + indented)
    loaded = load_site(site, {"modbus": plugin})
    assert [eq.id for eq in loaded.equipment] == ["PC-A1", "PC-B1", "PC-B2", "PC-C1"]
    assert loaded.maps["PC-C1"].name == "pms-airnet2"
