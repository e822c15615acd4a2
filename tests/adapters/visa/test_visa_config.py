"""The `kind: visa` entry and instrument maps: resource strings as users write them, strict and located."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.visa import VisaEquipmentConfig, load_instrument_map, plugin
from gateway.config import PROJECT_CONFIG_DIR, EquipmentConfig, load_site
from gateway.errors import ConfigError
from gateway.excursions import ExcursionMonitor

IDENTITY = {"manufacturer": "Keysight Technologies", "model": "DAQ970A", "serial": "MY58001234"}
ENTRY = {"id": "LN2-1", "class": "cryo_storage", "kind": "visa", "resource": "TCPIP::10.0.0.7::5025::SOCKET",
         "instrument_map": "scpi-temperature-daq", "identity": IDENTITY}


def validate(**change: Any) -> VisaEquipmentConfig:
    return VisaEquipmentConfig.model_validate({**ENTRY, **change})


@pytest.mark.parametrize("resource", [
    "TCPIP::10.0.0.7::5025::SOCKET", "TCPIP0::daq.suite3.local::5025::SOCKET", "TCPIP::10.0.0.7::INSTR",
    "TCPIP0::10.0.0.7::hislip0::INSTR", "ASRL/dev/ttyUSB0::INSTR", "ASRL1::INSTR",
])
def test_resource_strings_users_write_are_accepted(resource: str) -> None:
    assert validate(resource=resource).resource == resource


@pytest.mark.parametrize(("resource", "message"), [
    ("10.0.0.7:5025", "not a VISA resource string"),
    ("TCPIP::10.0.0.7::port::SOCKET", "SOCKET port must be a number"),
    ("TCPIP::10.0.0.7::70000::SOCKET", "SOCKET port must be a number"),
    ("GPIB0::5::INSTR", "reads TCPIP::host::port::SOCKET"),
    ("USB0::0x2A8D::0x5101::MY58001234::INSTR", "reads TCPIP::host::port::SOCKET"),
])
def test_other_resources_are_refused_with_a_reason(resource: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate(resource=resource)


def test_defaults_and_every_field_described() -> None:
    eq = validate()
    assert (eq.timeout_s, eq.read_termination, eq.excursions, eq.is_serial) == (None, None, [], False)
    assert eq.instrument_map_path == PROJECT_CONFIG_DIR / "visa-maps" / "scpi-temperature-daq.yaml"
    own = set(VisaEquipmentConfig.model_fields) - set(EquipmentConfig.model_fields) | {"kind"}
    assert all(VisaEquipmentConfig.model_fields[n].description for n in own)


def test_the_serial_number_check_is_skipped_only_when_asked() -> None:
    with pytest.raises(ValidationError, match=r"identity\.serial"):
        validate(identity={"manufacturer": "Keysight Technologies", "model": "DAQ970A"})
    assert validate(identity={**IDENTITY, "serial": None}).identity.serial is None


def test_line_settings_belong_to_serial_resources() -> None:
    with pytest.raises(ValidationError, match="baud_rate apply to ASRL"):
        validate(baud_rate=9600)
    eq = validate(resource="ASRL/dev/ttyUSB0::INSTR", baud_rate=9600, parity="even", stop_bits=2)
    assert eq.is_serial and (eq.baud_rate, eq.parity, eq.stop_bits) == (9600, "even", 2)


def test_a_missing_map_names_where_it_looked() -> None:
    with pytest.raises(ValidationError, match=r"instrument map 'nope' not found \(looked for .*visa-maps/nope.yaml"):
        validate(instrument_map="nope")


@pytest.mark.parametrize("name", ["scpi-temperature-daq", "scpi-temperature-daq-scan"])
def test_shipped_maps_load_and_read_every_point(name: str) -> None:
    m = load_instrument_map(PROJECT_CONFIG_DIR / "visa-maps" / f"{name}.yaml")
    assert sorted(p for q in m.scan for p in q.points) == sorted(m.points)
    assert all(p.unit == "Cel" and p.parameter for p in m.points.values())


@pytest.mark.parametrize(("body", "message"), [
    ("scan: [{query: 'MEAS:TEMP? (@101)', points: [a]}]\npoints: {a: {channel: '101'}, b: {channel: '102'}}\n",
     "points no scan query reads: b"),
    ("scan: [{query: 'MEAS:TEMP? (@101)', points: [a, c]}]\npoints: {a: {channel: '101'}}\n",
     "names point 'c', which the map does not define"),
    ("scan: [{query: 'ROUT:SCAN (@101)', points: [a]}]\npoints: {a: {channel: '101'}}\n", "is not a query"),
    ("on_connect: ['SYST:ERR?']\nscan: [{query: 'READ?', points: [a]}]\npoints: {a: {channel: '101'}}\n",
     "on_connect takes commands without a reply"),
    ("scan: [{query: 'READ?', points: [a]}]\npoints: {a: {chanel: '101'}}\n", "unknown field"),
])
def test_map_errors_are_located(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "daq.yaml"
    path.write_text("name: daq\n" + body)
    with pytest.raises(ConfigError, match=message) as caught:
        load_instrument_map(path)
    assert all(p.startswith(f"{path}:") for p in caught.value.problems)


def site(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "gateway: {id: gw}\nequipment:\n"
        "  - {id: LN2-1, class: cryo_storage, kind: visa, resource: 'TCPIP::10.0.0.7::5025::SOCKET',\n"
        "     instrument_map: scpi-temperature-daq,\n"
        "     identity: {manufacturer: M, model: X, serial: S1}" + extra + "}\n"
    )
    return path


def test_excursion_limits_become_the_equipment_monitor(tmp_path: Path) -> None:
    loaded = load_site(site(tmp_path, ",\n     excursions: [{parameter: probe_104_temperature, above: -150}]"),
                       {"visa": plugin})
    eq = loaded.equipment[0]
    (monitor,) = plugin.monitors(eq, loaded.maps[eq.id])
    assert isinstance(monitor, ExcursionMonitor) and monitor.limits[0].above == -150


def test_an_excursion_limit_on_an_unknown_parameter_is_a_config_error(tmp_path: Path) -> None:
    loaded = load_site(site(tmp_path, ",\n     excursions: [{parameter: dewar, above: -150}]"), {"visa": plugin})
    eq = loaded.equipment[0]
    with pytest.raises(ConfigError, match=r"equipment LN2-1: excursions\.0\.parameter: 'dewar' is not a parameter"):
        plugin.monitors(eq, loaded.maps[eq.id])


def test_a_limit_needs_one_side_located_in_the_site_file(tmp_path: Path) -> None:
    path = site(tmp_path, ",\n     excursions: [{parameter: probe_101_temperature}]")
    with pytest.raises(ConfigError, match=r"site.yaml:\d+: equipment.0.*excursions.0.*exactly one"):
        load_site(path, {"visa": plugin})
