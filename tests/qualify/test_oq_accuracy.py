"""`qualify oq --protocol oq-accuracy`: counts across the 16-bit word boundary, cryogenic temperatures and
ASTM text with escape sequences come out of the journal and at the MES exactly as the device was told to
carry them, and a criterion asking for other values fails."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.qualify.oq.protocol import PROTOCOL_DIR
from gateway.qualify.oq.runner import run_protocol

ACCURACY = PROTOCOL_DIR / "oq-accuracy.yaml"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_shipped_accuracy_protocol_passes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-accuracy", "-o", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {item["id"]: item for item in json.loads(proc.stdout)["items"]}
    assert list(items) == ["OQ-02", "OQ-02b", "OQ-02c", "OQ-12c"]
    item, boundary = items["OQ-02"], items["OQ-12c"]
    assert item["passed"], item["observed"]
    assert "0, 1, 65535, 65536, 4294967295" in item["observed"]
    assert "0 difference(s)" in item["observed"]
    # Annex 1 Grade A boundaries on a 1 m3 sample: the limit itself is within, one particle above is an action
    # cryogenic temperatures exactly, in Cel, and the overload a valueless Bad_SensorFailure, at the MES as journalled
    cryo = items["OQ-02b"]
    assert cryo["passed"], cryo["observed"]
    runs = [line for line in cryo["observed"].splitlines() if "carry exactly [-196.0, -150.0, 40.0, None]" in line]
    assert len(runs) == 4 and all("; the run starts at the" in line for line in runs)  # each probe, scan after scan
    assert "'value': -196.0, 'unit': 'Cel', 'quality': 'Good'}; observed 4" in cryo["observed"]
    assert "'quality': 'Bad_SensorFailure', 'detail': 'overload'}; observed 4" in cryo["observed"]
    assert "0 difference(s)" in cryo["observed"]
    # E1394 delimiters inside values, sent escaped, journalled unescaped once
    astm = items["OQ-02c"]
    assert astm["passed"], astm["observed"]
    assert "'parameter': 'specimen_id', 'value': 'W1234|26^000&01\\\\A'}; observed 1" in astm["observed"]
    assert "'parameter': 'bottle_location', 'value': 'D4^&R&|&E&'}; observed 1" in astm["observed"]
    assert "0 difference(s)" in astm["observed"]
    assert boundary["passed"], boundary["observed"]
    assert "29.0, 30.0, 3520.0, 3521.0" in boundary["observed"]
    assert "(lowest 3521.0)" in boundary["observed"] and "(highest 3520.0)" in boundary["observed"]
    assert "(lowest 30.0)" in boundary["observed"] and "(highest 29.0)" in boundary["observed"]


async def test_a_value_the_counter_did_not_carry_fails_the_case(tmp_path: Path) -> None:
    text = ACCURACY.read_text().replace("values: [0, 1, 65535, 65536, 4294967295]\n      - values_in_order",
                                        "values: [0, 65536, 65535, 1, 4294967295]\n      - values_in_order", 1)
    broken = tmp_path / "broken.yaml"
    site = PROTOCOL_DIR / "sites" / "counter-accuracy.yaml"
    broken.write_text(text.replace("site: counter-accuracy", f"site: {site}"))
    evidence, _ = await run_protocol(broken, work_dir=tmp_path / "work", stderr=io.StringIO(), case_ids=["OQ-02"])
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected records {'equipment': 'PC-2', 'parameter': 'particle_count_0_3um'} carry exactly" \
           " [0, 65536, 65535, 1, 4294967295]" in item.observed


async def test_a_limit_one_particle_off_fails_the_boundary_case(tmp_path: Path) -> None:
    """Judged against 3 519 /m3, the sample at exactly 3 520 would need the alarm the gateway rightly did not raise."""
    text = ACCURACY.read_text().replace("parameter: particle_concentration_0_5um, action: 3520}",
                                        "parameter: particle_concentration_0_5um, action: 3519}", 1)
    broken = tmp_path / "broken.yaml"
    site = PROTOCOL_DIR / "sites" / "counter-boundary.yaml"
    broken.write_text(text.replace("site: counter-boundary", f"site: {site}"))
    evidence, _ = await run_protocol(broken, case_ids=["OQ-12c"], work_dir=tmp_path / "work", stderr=io.StringIO())
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected an alarm on particle_concentration_0_5um exactly at each change of level (action > 3519" \
        in item.observed
    assert "first difference" in item.observed


async def test_an_overload_journalled_as_a_temperature_would_fail_the_temperature_case(tmp_path: Path) -> None:
    """Asked to find +9.9E37 as a probe's value (the bug of passing the overload on), the case fails."""
    wanted = "values: [-196.0, -150.0, 40.0, null]"
    text = ACCURACY.read_text()
    assert wanted in text
    broken = tmp_path / "broken.yaml"
    site = PROTOCOL_DIR / "sites" / "daq-accuracy.yaml"
    broken.write_text(text.replace(wanted, "values: [-196.0, -150.0, 40.0, 9.9e+37]", 1)
                      .replace("site: daq-accuracy", f"site: {site}"))
    evidence, _ = await run_protocol(broken, work_dir=tmp_path / "work", stderr=io.StringIO(), case_ids=["OQ-02b"])
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected records {'equipment': 'LN2-2', 'parameter': 'probe_101_temperature'} carry exactly" \
           " [-196.0, -150.0, 40.0, 9.9e+37]" in item.observed
