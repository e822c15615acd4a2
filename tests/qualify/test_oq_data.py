"""`qualify oq --protocol oq-data`: backup/restore, raw data for a lot, access control, repeats, a device
queue across a restart, device clock skew and buffer back-fill pass through the command line; an export
that leaves out the raw bytes fails the raw-traceability criterion."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.qualify.oq.protocol import PROTOCOL_DIR, load_protocol
from gateway.qualify.oq.runner import run_protocol

DATA = PROTOCOL_DIR / "oq-data.yaml"


#: The protocol in two runs, so each stays well inside the per-test time limit (the outage case alone waits 10 s).
GROUPS = [["OQ-22", "OQ-23", "OQ-17", "OQ-20"], ["OQ-20b", "OQ-14", "OQ-04"]]


def test_the_groups_cover_the_protocol() -> None:
    assert sorted(c for group in GROUPS for c in group) == sorted(c.id for c in load_protocol(DATA).cases)


@pytest.mark.slow
@pytest.mark.parametrize("cases", GROUPS, ids=["retention-access-repeats", "device-time-and-buffers"])
def test_the_shipped_data_protocol_passes(tmp_path: Path, cases: list[str]) -> None:
    chosen = [arg for case in cases for arg in ("--case", case)]
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-data", *chosen, "-o", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=55, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {item["id"]: item for item in json.loads(proc.stdout)["items"]}
    assert list(items) == cases
    assert all(item["passed"] for item in items.values()), [i["observed"] for i in items.values() if not i["passed"]]
    expected_text = {
        "OQ-22": "then ['journal.restored']",
        "OQ-23": "raw_sha256 mismatches none",
        "OQ-17": "401 unknown token",
        "OQ-20": "repeats seq",
        "OQ-20b": "airnet pops =",
        "OQ-14": "clock_offset_s filled on",
        "OQ-04": "counter samples_produced =",
    }
    for case in cases:
        assert expected_text[case] in items[case]["observed"], items[case]["observed"]
    assert "token-not-secret" not in proc.stdout, "tokens are not written into the evidence"
    assert list(tmp_path.glob("oq-*.html"))


def export_without_raw(tmp_path: Path) -> Path:
    """OQ-23's export criterion against an export made without the raw bytes: the parsed records then
    name a raw_sha256 whose bytes are nowhere in the copy, and the case must say so."""
    path = tmp_path / "broken.yaml"
    path.write_text(
        "title: OQ-23 against an export that leaves out the raw data\n"
        "cases:\n"
        "  - id: OQ-23\n"
        "    title: Raw data retention and export\n"
        "    requirements: [URS-DATA-03]\n"
        f"    site: {PROTOCOL_DIR / 'sites' / 'counter-site.yaml'}\n"
        "    expected: every parsed record exported beside the raw bytes it came from\n"
        "    steps:\n"
        "      - wait_for: {committed: 20}\n"
        "      - stop_gateway: true\n"
        "      - cli: {args: [export, -c, '{site}', -o, '{work}/export.jsonl']}\n"
        "    accept:\n"
        "      - export_traceable: {file: export.jsonl}\n"
        "      - verify: ok\n"
    )
    return path


async def test_an_export_without_the_raw_bytes_fails_raw_traceability(tmp_path: Path) -> None:
    evidence, _ = await run_protocol(export_without_raw(tmp_path), stderr=io.StringIO())
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected every record of the export export.jsonl" in item.observed
    assert "0 raw copies tracing to their records" in item.observed
    assert "hash differences none" in item.observed
    assert "PASS: expected journal verify ok" in item.observed


def test_the_data_protocol_names_requirements_and_existing_sites() -> None:
    for case in load_protocol(DATA).cases:
        assert case.requirements
        assert (PROTOCOL_DIR / "sites" / f"{case.site}.yaml").exists(), case.id
