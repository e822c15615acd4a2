"""`qualify oq --protocol oq-accuracy`: counts across the 16-bit word boundary come out of the journal and
at the MES exactly as the counter was told to carry them, and a criterion asking for other values fails."""

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
def test_the_shipped_accuracy_protocol_passes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-accuracy", "-o", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (item,) = json.loads(proc.stdout)["items"]
    assert item["id"] == "OQ-02" and item["passed"], item["observed"]
    assert "0, 1, 65535, 65536, 4294967295" in item["observed"]
    assert "0 difference(s)" in item["observed"]


async def test_a_value_the_counter_did_not_carry_fails_the_case(tmp_path: Path) -> None:
    text = ACCURACY.read_text().replace("values: [0, 1, 65535, 65536, 4294967295]\n      - values_in_order",
                                        "values: [0, 65536, 65535, 1, 4294967295]\n      - values_in_order", 1)
    broken = tmp_path / "broken.yaml"
    site = PROTOCOL_DIR / "sites" / "counter-accuracy.yaml"
    broken.write_text(text.replace("site: counter-accuracy", f"site: {site}"))
    evidence, _ = await run_protocol(broken, work_dir=tmp_path / "work", stderr=io.StringIO())
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected records {'equipment': 'PC-2', 'parameter': 'particle_count_0_3um'} carry exactly" \
           " [0, 65536, 65535, 1, 4294967295]" in item.observed
