"""`qualify oq --protocol oq-integrity`: configuration audit, the validated-state lock, the disk floor and
alarm acknowledgement pass, and a gateway without a disk floor fails OQ-24 saying it was not refused."""

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

INTEGRITY = PROTOCOL_DIR / "oq-integrity.yaml"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_shipped_integrity_protocol_passes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-integrity", "-o", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {item["id"]: item for item in json.loads(proc.stdout)["items"]}
    assert list(items) == [c.id for c in load_protocol(INTEGRITY).cases]
    assert all(item["passed"] for item in items.values()), [i["observed"] for i in items.values() if not i["passed"]]
    assert "config.changed" in items["OQ-15"]["observed"] and "old=" in items["OQ-15"]["observed"]
    assert "DIFFERS from the approved" in items["OQ-18"]["observed"]
    assert "403 oq-viewer is viewer" in items["OQ-13"]["observed"]
    assert "token-not-secret" not in proc.stdout, "tokens are not written into the evidence"


def no_floor_protocol(tmp_path: Path) -> Path:
    """OQ-24 with the journal's floor switched off: the gateway keeps writing, and the case must say so."""
    path = tmp_path / "broken.yaml"
    path.write_text(
        "title: OQ-24 against a gateway without a disk floor\n"
        "cases:\n"
        "  - id: OQ-24\n"
        "    title: Journal disk floor\n"
        "    requirements: [URS-SAF-04]\n"
        f"    site: {PROTOCOL_DIR / 'sites' / 'counter-site.yaml'}\n"
        "    expected: new records refused when the disk is below the floor\n"
        "    steps:\n"
        "      - wait_for: {committed: 20}\n"
        "      - stop_gateway: true\n"
        "      - edit_site: {set: {journal.min_free_mb: 0}}\n"
        "      - restart_gateway: true\n"
        "      - wait_for: {committed: 60}\n"
        "        expect_refusal: true\n"
        "    accept:\n"
        "      - refused: {step: 5, contains: refusing new records}\n"
        "      - verify: ok\n"
    )
    return path


async def test_a_gateway_without_a_disk_floor_fails_the_disk_floor_case(tmp_path: Path) -> None:
    err = io.StringIO()
    evidence, _ = await run_protocol(no_floor_protocol(tmp_path), stderr=err)
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected step 5 refused saying 'refusing new records'; observed NOT refused" in item.observed
    assert "PASS: expected journal verify ok" in item.observed
    assert any("NOT refused" in s for s in item.steps)


def test_a_refused_criterion_must_name_a_step_that_expects_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "title: bad\n"
        "cases:\n"
        "  - id: OQ-24\n"
        "    title: t\n"
        "    requirements: [R-1]\n"
        "    site: counter-site\n"
        "    expected: e\n"
        "    steps:\n"
        "      - wait_for: {committed: 1}\n"
        "    accept:\n"
        "      - refused: {step: 1}\n"
    )
    with pytest.raises(ConfigError, match="refused: step 1 is not a step with expect_refusal: true"):
        load_protocol(path)


def test_the_shipped_protocols_name_requirements_and_existing_sites() -> None:
    for name in ("oq-devices", "oq-integrity"):
        for case in load_protocol(PROTOCOL_DIR / f"{name}.yaml").cases:
            assert case.requirements
            assert (PROTOCOL_DIR / "sites" / f"{case.site}.yaml").exists(), case.id
