"""`qualify oq --protocol oq-data`: backup/restore, raw data for a lot, access control, a result sent again
and corrected (before and after a restart), a device queue across a restart, device clocks set ahead and
back or crossing DST, and buffer back-fill pass through the command line; an export that leaves out the raw
bytes fails the raw-traceability criterion."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.qualify.oq.protocol import PROTOCOL_DIR, load_protocol
from gateway.qualify.oq.runner import run_protocol

DATA = PROTOCOL_DIR / "oq-data.yaml"


#: The protocol in three runs of well under a minute each on a quiet machine (the outage case alone waits
#: 10 s, the DST case 12 s).
GROUPS = [["OQ-22", "OQ-23", "OQ-17"], ["OQ-20", "OQ-20c", "OQ-20b", "OQ-14"], ["OQ-14b", "OQ-14c", "OQ-04"]]


def test_the_groups_cover_the_protocol() -> None:
    assert sorted(c for group in GROUPS for c in group) == sorted(c.id for c in load_protocol(DATA).cases)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("cases", GROUPS, ids=["retention-access", "versions-and-clock", "dst-and-buffers"])
def test_the_shipped_data_protocol_passes(tmp_path: Path, cases: list[str]) -> None:
    chosen = [arg for case in cases for arg in ("--case", case)]
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-data", *chosen, "-o", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {item["id"]: item for item in json.loads(proc.stdout)["items"]}
    assert list(items) == cases
    assert all(item["passed"] for item in items.values()), [i["observed"] for i in items.values() if not i["passed"]]
    expected_text = {
        "OQ-22": ["then ['journal.restored']"],
        "OQ-23": ["raw_sha256 mismatches none"],
        "OQ-17": ["401 unknown token"],
        # the repeat is the same version; the correction names the first copy by its hash and changes the value
        "OQ-20": [re.compile(r"observed 1: seq \d+ repeats seq \d+"),
                  re.compile(r"observed 1 linked correction\(s\) changing the value: seq \d+ time_to_detection"
                             r" corrects seq \d+ \(same result_key and raw_sha256 [0-9a-f]{12}\.\.\.\): was 1\.0,"
                             r" now 2\.5; .*; 0 'corrects: unknown'; 0 link\(s\) to no earlier version")],
        "OQ-20c": ["observed 0 linked correction(s) changing the value; 0 linked unchanged item(s); 1 'corrects:"
                   " unknown' at seqs"],
        "OQ-20b": ["airnet pops ="],
        "OQ-14": ["PASS: expected CP-1 temperature clock_offset_s before the next equipment=CP-1 parameter=clock_drift"
                  " value=ahead: on at least 3 record(s) within -2..2 s",
                  "value=normal: on at least 3 record(s) within 298..302 s; observed",
                  "device sample seen again at seqs none, receive time backwards at seqs none"],
        "OQ-14b": [re.compile(r"spread 0\.\d+ s; \d+ comparison\(s\), [1-9]\d* before and [1-9]\d* after"
                              r" 2025-03-30T01:00:00Z")],
        "OQ-14c": ["clock_offset_s filled on 0"],
        "OQ-04": ["counter samples_produced ="],
    }
    for case in cases:
        for text in expected_text[case]:
            observed = items[case]["observed"]
            assert (text.search(observed) if isinstance(text, re.Pattern) else text in observed), (text, observed)
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
