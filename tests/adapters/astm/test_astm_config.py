"""The `kind: astm` entry: defaults are the standard's, and every mistake is one located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_site
from gateway.errors import ConfigError
from gateway.plugins import adapter_plugins

SITE = """\
gateway: {id: gw-1}
equipment:
  - id: BTA-1
    class: culture_reader
    kind: astm
    port: socket://127.0.0.1:4001
"""


def load(tmp_path: Path, extra: str = "") -> object:
    path = tmp_path / "site.yaml"
    path.write_text(SITE + extra)
    return load_site(path, {k: v for k, v in adapter_plugins().items() if k == "astm"})


def test_the_defaults_are_the_standards(tmp_path: Path) -> None:
    eq = load(tmp_path).equipment[0]  # type: ignore[attr-defined]
    s = eq.link_settings()
    assert (s.reply_s, s.receive_s, s.busy_retry_s, s.contention_s, s.max_attempts, s.max_text) == (
        15.0, 30.0, 10.0, 20.0, 6, 240)
    assert (eq.baudrate, eq.bytesize, eq.parity, eq.stopbits) == (9600, 8, "none", 1)
    assert eq.endpoint == "astm+socket://127.0.0.1:4001"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    device_timezone: Mars/Olympus\n", "7: equipment.0.device_timezone: unknown time zone 'Mars/Olympus'"),
        ("    lot_pattern: '^(LOT\\\\d+)'\n", "7: equipment.0.lot_pattern: lot_pattern needs a group named lot"),
        ("    profile: nosuch\n", "7: equipment.0.profile: ASTM profile 'nosuch' not found"),
        ("    timers: {reply_s: 0}\n", "7: equipment.0.timers.reply_s: Input should be greater than 0"),
        ("    max_frame_chars: 100\n", "7: equipment.0.max_frame_chars: Input should be greater than or equal"),
        ("    baud: 9600\n", "7: equipment.0.baud: unknown field"),
    ],
)
def test_a_mistake_is_one_located_line(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, extra)
    (problem,) = err.value.problems
    assert f"site.yaml:{message}" in problem
