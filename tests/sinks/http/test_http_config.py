"""The ``type: http`` sink entry: strict, no secret in the file, TLS settings that fit together."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gateway.plugins import SINK_GROUP
from gateway.sinks.http import HttpSinkConfig, plugin

SAMPLE = Path(__file__).resolve().parents[3] / "gateway" / "sinks" / "http" / "sample.yaml"


def _load(tmp_path: Path, **fields: Any) -> HttpSinkConfig:
    entry = {"name": "mes", "type": "http", "url": "https://mes.example/records", **fields}
    return HttpSinkConfig.model_validate(entry, context={"config_dir": tmp_path})


def _error(tmp_path: Path, **fields: Any) -> str:
    with pytest.raises(ValidationError) as error:
        _load(tmp_path, **fields)
    return str(error.value)


@pytest.fixture
def pem_files(tmp_path: Path) -> Path:
    for name in ("ca.pem", "gw.crt", "gw.key"):
        (tmp_path / name).write_text("-----BEGIN PLACEHOLDER-----\n", encoding="utf-8")
    return tmp_path


def test_defaults_verify_tls_with_a_ten_second_timeout(tmp_path: Path) -> None:
    config = _load(tmp_path)
    assert (config.timeout_s, config.verify_tls, config.headers) == (10.0, True, {})
    assert config.bearer_token_env is config.bearer_token_file is config.ca_file is None


@pytest.mark.parametrize(
    "url", ["ftp://mes.example/records", "mes.example/records", "http:///records", "https://mes.example:99999/r"]
)
def test_a_url_that_is_not_http_or_https_is_refused(tmp_path: Path, url: str) -> None:
    assert "url" in _error(tmp_path, url=url)


def test_credentials_in_the_url_are_refused(tmp_path: Path) -> None:
    assert "url must not hold credentials: use bearer_token_env" in _error(tmp_path, url="https://u:p@mes/records")


def test_a_client_certificate_without_its_key_is_refused(pem_files: Path) -> None:
    message = _error(pem_files, client_cert="gw.crt")
    assert "mutual TLS needs both client_cert and client_key (or neither)" in message
    assert "mutual TLS needs both" in _error(pem_files, client_key="gw.key")


def test_tls_files_are_resolved_against_the_site_file_and_must_exist(pem_files: Path) -> None:
    config = _load(pem_files, ca_file="ca.pem", client_cert="gw.crt", client_key="gw.key")
    assert config.ca_file == pem_files / "ca.pem" and config.client_key == pem_files / "gw.key"
    assert f"file not found: {pem_files / 'missing.pem'}" in _error(pem_files, ca_file="missing.pem")


def test_tls_settings_need_an_https_url(pem_files: Path) -> None:
    message = _error(pem_files, url="http://mes.example/records", ca_file="ca.pem", verify_tls=False)
    assert "ca_file, verify_tls need an https:// url" in message


def test_verify_tls_false_with_a_ca_file_is_refused(pem_files: Path) -> None:
    assert "verify_tls: false ignores ca_file" in _error(pem_files, ca_file="ca.pem", verify_tls=False)


@pytest.mark.parametrize("key", ["token", "bearer_token"])
def test_a_token_in_the_site_file_is_refused_with_where_to_put_it(tmp_path: Path, key: str) -> None:
    message = _error(tmp_path, **{key: "s3cret"})
    assert f"`{key}:` is not allowed in a site file" in message and "bearer_token_env" in message


def test_an_authorization_header_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, headers={"authorization": "Bearer s3cret", "X-Site": "plant-1"})
    assert "headers may not set authorization: the sink sets them itself" in message


def test_token_from_env_and_from_file_at_once_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, bearer_token_env="MES_TOKEN", bearer_token_file="mes.token")
    assert "give bearer_token_env or bearer_token_file, not both" in message


def test_the_token_file_is_relative_to_the_site_file_and_read_only_at_connect(tmp_path: Path) -> None:
    config = _load(tmp_path, bearer_token_file="secrets/mes.token")  # need not exist yet
    assert config.bearer_token_file == tmp_path / "secrets" / "mes.token"


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    assert "Extra inputs are not permitted" in _error(tmp_path, retries=3)


def test_the_http_sink_is_registered_under_its_type() -> None:
    assert entry_points(group=SINK_GROUP)["http"].load() is plugin
    assert plugin.config_model is HttpSinkConfig


def test_the_sample_entries_load(tmp_path: Path) -> None:
    for name in ("site-ca.pem", "gateway-suite-3.crt", "gateway-suite-3.key"):
        (tmp_path / "pki").mkdir(exist_ok=True)
        (tmp_path / "pki" / name).write_text("placeholder\n", encoding="utf-8")
    entries = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    configs = [HttpSinkConfig.model_validate(e, context={"config_dir": tmp_path}) for e in entries]
    assert [c.name for c in configs] == ["mes", "mes-dr", "mes-standin"]
    assert configs[1].client_key == tmp_path / "pki" / "gateway-suite-3.key"
