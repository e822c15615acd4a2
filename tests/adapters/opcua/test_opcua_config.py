"""The `kind: opcua` equipment entry: strict, cross-checked, located in the site file, no inline password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.opcua import OpcUaEquipmentConfig, plugin
from gateway.config import PROJECT_CONFIG_DIR, load_site
from gateway.errors import ConfigError

BASE = {
    "id": "CP-1",
    "class": "cell_processor",
    "kind": "opcua",
    "endpoint": "opc.tcp://10.0.0.9:4840/cgt/closed-processor/",
    "node_map": "lads-closed-processor",
}


def validate(data: dict[str, Any], **context: Any) -> OpcUaEquipmentConfig:
    return OpcUaEquipmentConfig.model_validate(data, context=context or None)


def error(data: dict[str, Any], **context: Any) -> str:
    with pytest.raises(ValidationError) as err:
        validate(data, **context)
    return "\n".join(e["msg"] for e in err.value.errors())


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    for name in ("cli_cert.der", "cli_key.pem", "srv_cert.der", "pw.txt"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_fields_and_defaults() -> None:
    eq = validate(BASE)
    assert (eq.mode, eq.publishing_interval_ms, eq.timeout_s, eq.watchdog_interval_s) == ("subscribe", 500.0, 5.0, 1.0)
    assert eq.security.policy == "None" and eq.security.trust_on_first_use is False
    assert eq.node_map_path == PROJECT_CONFIG_DIR / "nodemaps" / "lads-closed-processor.yaml"
    assert eq.server_address == "opc.tcp://10.0.0.9:4840"
    assert eq.load_map() is eq.load_map()


@pytest.mark.parametrize("endpoint", ["http://x:4840", "opc.tcp://", "opc.tcp://host name:1", "10.0.0.9:4840"])
def test_endpoint_must_be_an_opc_tcp_url(endpoint: str) -> None:
    assert "pattern" in error({**BASE, "endpoint": endpoint})


def test_map_by_path_is_relative_to_the_site_file(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text((PROJECT_CONFIG_DIR / "nodemaps" / "lads-closed-processor.yaml").read_text())
    eq = validate({**BASE, "node_map": "mine.yaml"}, config_dir=str(tmp_path))
    assert eq.node_map_path == tmp_path / "mine.yaml"
    assert "node map 'nowhere' not found" in error({**BASE, "node_map": "nowhere"})


def test_an_inline_password_is_refused_with_the_way_out() -> None:
    msg = error({**BASE, "security": {"username": "op", "password": "secret"}})
    assert "password_env" in msg and "password_file" in msg and "secret" not in msg


def test_basic256sha256_needs_mode_certificate_key_and_trust(pki: Path) -> None:
    msg = error({**BASE, "security": {"policy": "Basic256Sha256"}})
    assert "needs mode, client_certificate, client_private_key" in msg
    secure = {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "client_certificate": "cli_cert.der",
        "client_private_key": "cli_key.pem",
    }
    assert "trusted_server_certificates" in error({**BASE, "security": secure}, config_dir=str(pki))
    eq = validate(
        {**BASE, "security": {**secure, "trusted_server_certificates": ["srv_cert.der"]}}, config_dir=str(pki)
    )
    assert eq.security.trusted_server_certificates == [pki / "srv_cert.der"]
    assert eq.security.client_certificate == pki / "cli_cert.der"
    both = {**secure, "trusted_server_certificates": ["srv_cert.der"], "trust_on_first_use": True}
    assert "not both" in error({**BASE, "security": both}, config_dir=str(pki))
    assert validate({**BASE, "security": {**secure, "trust_on_first_use": True}}, config_dir=str(pki))


def test_security_files_must_exist(pki: Path) -> None:
    secure = {
        "policy": "Basic256Sha256",
        "mode": "Sign",
        "client_certificate": "missing.der",
        "client_private_key": "cli_key.pem",
        "trusted_server_certificates": ["gone.der"],
    }
    msg = error({**BASE, "security": secure}, config_dir=str(pki))
    assert "missing.der" in msg and "gone.der" in msg


def test_policy_none_takes_no_security_material() -> None:
    assert "need policy Basic256Sha256" in error({**BASE, "security": {"mode": "Sign"}})
    assert "unprotected" in error({**BASE, "security": {"username": "op", "password_env": "OPC_PW"}})


def test_username_and_password_source_go_together(pki: Path) -> None:
    secure = {
        "policy": "Basic256Sha256",
        "mode": "Sign",
        "client_certificate": "cli_cert.der",
        "client_private_key": "cli_key.pem",
        "trust_on_first_use": True,
    }
    assert "needs password_env or password_file" in error(
        {**BASE, "security": {**secure, "username": "op"}}, config_dir=str(pki)
    )
    assert "need a username" in error({**BASE, "security": {**secure, "password_env": "PW"}}, config_dir=str(pki))
    assert "not both" in error(
        {**BASE, "security": {**secure, "username": "op", "password_env": "PW", "password_file": "pw.txt"}},
        config_dir=str(pki),
    )
    assert "pattern" in error(
        {**BASE, "security": {**secure, "username": "op", "password_env": "1-bad"}}, config_dir=str(pki)
    )
    eq = validate({**BASE, "security": {**secure, "username": "op", "password_file": "pw.txt"}}, config_dir=str(pki))
    assert eq.security.password_file == pki / "pw.txt"


def test_unknown_fields_are_errors() -> None:
    assert "Extra inputs" in error({**BASE, "publish_ms": 5})


SITE = """gateway: {{id: gw-test}}
equipment:
  - id: CP-1
    class: cell_processor
    kind: opcua
    endpoint: opc.tcp://127.0.0.1:4840/
    node_map: {node_map}
    security:
      username: op
      password: hunter2
"""


def test_errors_are_located_in_the_site_file(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(node_map="lads-closed-processor"))
    with pytest.raises(ConfigError) as err:
        load_site(site, {"opcua": plugin})
    (problem,) = err.value.problems
    assert problem.startswith(f"{site}:8: equipment.0.security: `password:` is not allowed")


def test_a_good_site_loads_with_its_map(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(node_map="lads-closed-processor").split("    security:")[0])
    loaded = load_site(site, {"opcua": plugin})
    assert loaded.maps["CP-1"].name == "lads-closed-processor"


def test_the_sample_entries_load(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[3] / "adapters" / "opcua" / "sample.yaml"
    (tmp_path / "pki").mkdir()
    for name in ("gateway_cert.der", "gateway_key.pem", "processor-1_cert.der"):
        (tmp_path / "pki" / name).write_bytes(b"x")
    indented = "".join(f"  {line}" for line in sample.read_text().splitlines(keepends=True))
    site = tmp_path / "site.yaml"
    site.write_text("gateway: {id: gw-test}\nequipment:\n" + indented)
    loaded = load_site(site, {"opcua": plugin})
    assert [eq.id for eq in loaded.equipment] == ["CP-A1", "CP-B1"]
    assert loaded.equipment_by_id("CP-A1").security.password_env == "CGT_OPCUA_PASSWORD_CP_A1"
    assert loaded.maps["CP-B1"].name == "lads-closed-processor"
