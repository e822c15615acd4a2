"""`qualify oq --protocol oq-load`: eight counters, a freezer and the HTTP sink for 20 s lose nothing, with
the latency and the gateway process's CPU and memory measured and stated in the evidence."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_shipped_load_protocol_passes_with_its_figures(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-load", "-o", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (item,) = json.loads(proc.stdout)["items"]
    assert item["id"] == "OQ-21" and item["passed"], item["observed"]
    assert re.search(r"p95 \d+\.\d+ s", item["observed"])
    assert re.search(r"of one core\), peak RSS \d+\.\d MB, measured for the gateway process", item["observed"])
    assert "bench" in item["expected"]
