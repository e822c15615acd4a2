"""Logs: a traceback never shows local variables, where a token or password may sit."""

from __future__ import annotations

import pytest
import structlog

from gateway import logs


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_logged_traceback_shows_no_local_variables(fmt: logs.LogFormat, capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt)
    try:
        def connect() -> None:
            bearer_token = "s3cret-token-XYZ"  # noqa: F841 - the local a rich traceback would print
            raise ValueError("the MES refused the credentials")

        try:
            connect()
        except ValueError:
            structlog.get_logger("test").exception("sink failed")
        err = capfd.readouterr().err
        assert "the MES refused the credentials" in err and "Traceback" in err
        assert "s3cret-token-XYZ" not in err
    finally:
        structlog.reset_defaults()
