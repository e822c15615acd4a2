"""The ``kind: crf`` entry: approved profiles and the point map loaded at validation, errors that say what
is wrong, and the plugin's monitor wired to the approved profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.serial.crf import CrfEquipmentConfig, plugin
from adapters.serial.crf.translate import POINTS
from gateway.freezing import ConformanceMonitor


def entry(**extra: Any) -> dict[str, Any]:
    return {"id": "CRF-1", "class": "controlled_rate_freezer", "kind": "crf", "port": "/dev/ttyUSB0", **extra}


def test_a_minimal_entry_with_a_shipped_profile() -> None:
    eq = CrfEquipmentConfig.model_validate(entry(approved_profiles=["classic-cell-therapy"]))
    assert (eq.baudrate, eq.parity, eq.reply_timeout_s, eq.silence_timeout_s) == (9600, "none", 3.0, 30.0)
    assert set(eq.profiles) == {"classic-cell-therapy"}
    assert set(plugin.device_map(eq).points) == POINTS
    assert all(p.parameter == name for name, p in plugin.device_map(eq).points.items())
    (monitor,) = plugin.monitors(eq, plugin.device_map(eq))
    assert isinstance(monitor, ConformanceMonitor) and set(monitor.profiles) == {"classic-cell-therapy"}
    assert eq.source_base == "crf+serial:///dev/ttyUSB0"
    assert CrfEquipmentConfig.model_validate(entry(port="socket://10.0.3.40:4001")).source_base == (
        "crf+socket://10.0.3.40:4001")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"poll_interval_s": 1}, "poll_interval_s does not apply"),
        ({"approved_profiles": ["no-such-profile"]}, "approved profile 'no-such-profile' not found"),
        ({"approved_profiles": ["classic-cell-therapy", "classic-cell-therapy"]}, "listed twice"),
        ({"silence_timeout_s": 0}, "greater than 0"),
        ({"parity": "weird"}, "Input should be"),
        ({"baud": 9600}, "Extra inputs are not permitted"),
    ],
)
def test_wrong_entries_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CrfEquipmentConfig.model_validate(entry(**extra))


def test_a_broken_profile_file_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("name: mine\nversion: 1\nsteps:\n  - {type: hold, target_c: 400}\n")
    with pytest.raises(ValidationError, match=r"mine.yaml:4: steps.0.target_c: Input should be less than"):
        CrfEquipmentConfig.model_validate(entry(approved_profiles=["mine.yaml"]), context={"config_dir": tmp_path})
