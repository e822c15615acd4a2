"""`qualify oq`: the shipped core protocol passes on the simulators, a broken delivery fails its case with
the gap it observed, and a bad protocol file is refused with located errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.qualify.oq.protocol import PROTOCOL_DIR, load_protocol
from gateway.qualify.oq.runner import run_protocol

CORE = PROTOCOL_DIR / "oq-core.yaml"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_shipped_core_protocol_passes_and_writes_evidence(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-core", "-o", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evidence = json.loads(proc.stdout)
    ids = [item["id"] for item in evidence["items"]]
    assert ids == [c.id for c in load_protocol(CORE).cases]
    assert all(item["passed"] for item in evidence["items"])
    html = next(tmp_path.glob("*.html")).read_text()
    assert "OQ-12" in html and "<svg" in html  # the particle plot against its limits is in the report
    assert "OQ-05 step 2/5" in proc.stderr  # one progress line per step


def broken_protocol(tmp_path: Path) -> Path:
    """OQ-05, with an MES that rejects some records: they never reach it, and the case must say which."""
    path = tmp_path / "broken.yaml"
    path.write_text(
        "title: OQ-05 against an MES that drops records\n"
        "cases:\n"
        "  - id: OQ-05\n"
        "    title: MES outage and recovery\n"
        "    requirements: [URS-SAF-01]\n"
        f"    site: {PROTOCOL_DIR / 'sites' / 'counter-mes.yaml'}\n"
        "    expected: every committed record delivered exactly once\n"
        "    steps:\n"
        "      - mes: {action: reject, params: {seqs: [5, 6, 7]}}\n"
        "      - wait_for: {mes_stored: 50}\n"
        "      - mes: {action: go_down}\n"
        "      - wait_for: {backlog: 100}\n"
        "      - mes: {action: come_up}\n"
        "      - wait_for: {committed: 200}\n"
        "      - wait_for: {seconds: 0.5}\n"
        "    accept:\n"
        "      - no_gaps: true\n"
        "      - mes_received_exactly: committed\n"
    )
    return path


async def test_an_mes_that_drops_records_makes_the_delivery_case_fail_with_the_gap(tmp_path: Path) -> None:
    err = io.StringIO()
    evidence, written = await run_protocol(broken_protocol(tmp_path), out_dir=tmp_path / "out", stderr=err)
    (item,) = evidence.items
    assert not evidence.passed and not item.passed
    assert "PASS: expected committed seqs 1..last" in item.observed  # the journal itself is complete
    assert "FAIL: expected every committed record at the MES exactly once" in item.observed
    assert "missing 5-7" in item.observed
    assert "OQ-05 FAIL" in err.getvalue()
    assert written is not None and all(p.exists() for p in written)


def test_a_bad_protocol_file_is_refused_with_located_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "title: bad\n"
        "cases:\n"
        "  - id: OQ-99\n"
        "    title: t\n"
        "    requirements: [R-1]\n"
        "    site: counter-mes\n"
        "    expected: e\n"
        "    steps:\n"
        "      - {inject: {sim: counter}, mes: {action: go_down}}\n"
        "      - kill_gateway: true\n"
        "      - wait_for: {seconds: 1, after: {parameter: device_event}}\n"
        "    accept:\n"
        "      - {verify: fine}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_protocol(path)
    text = str(caught.value)
    assert f"{path}:9: cases.0.steps.0: a step does exactly one thing" in text
    assert f"{path}:11: cases.0.steps.2.wait_for: wait_for after goes with records" in text
    assert f"{path}:13: cases.0.accept.0.verify: Input should be 'ok' or 'broken'" in text


def test_the_shipped_protocol_names_requirements_and_existing_sites() -> None:
    protocol = load_protocol(CORE)
    for case in protocol.cases:
        assert case.requirements
        assert (PROTOCOL_DIR / "sites" / f"{case.site}.yaml").exists(), case.id
