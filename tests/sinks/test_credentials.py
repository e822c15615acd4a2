"""Secrets and TLS of the network sinks: read from the environment or a file at connect, one line when missing."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from gateway.sinks import SinkError
from gateway.sinks.credentials import read_secret, tls_context


def secret(env: str | None = None, file: Path | None = None) -> str | None:
    return read_secret("mes", "the MES bearer token", env=env, env_field="bearer_token_env", file=file,
                       file_field="bearer_token_file")


def test_a_secret_comes_from_the_environment_or_the_first_line_of_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CGT_TEST_TOKEN", "  t0ken \n")
    assert secret(env="CGT_TEST_TOKEN") == "t0ken"
    (tmp_path / "token").write_text("from-file\nsecond line ignored\n")
    assert secret(file=tmp_path / "token") == "from-file"
    assert secret() is None


def test_a_missing_or_empty_secret_says_which_setting_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CGT_TEST_TOKEN", raising=False)
    with pytest.raises(SinkError, match=r"^mes: environment variable CGT_TEST_TOKEN \(bearer_token_env\) is not set "
                                        r"or empty: set it to the MES bearer token$"):
        secret(env="CGT_TEST_TOKEN")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SinkError, match=r"bearer_token_file .*/empty is empty: put the MES bearer token on its first"):
        secret(file=tmp_path / "empty")
    with pytest.raises(SinkError, match=r"cannot read bearer_token_file .*/absent: No such file or directory$"):
        secret(file=tmp_path / "absent")


def test_tls_verifies_by_default_and_a_bad_ca_file_is_one_line(tmp_path: Path) -> None:
    context = tls_context("mes", ca_file=None, client_cert=None, client_key=None, verify=True)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    off = tls_context("mes", ca_file=None, client_cert=None, client_key=None, verify=False)
    assert off.verify_mode is ssl.CERT_NONE
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(SinkError, match=r"^mes: cannot load ca_file .*ca.pem: "):
        tls_context("mes", ca_file=tmp_path / "ca.pem", client_cert=None, client_key=None, verify=True)
