"""`qualify oq --protocol oq-devices`: the device and interface cases pass on the simulators with their
evidence (the freezer curve plotted against its band), a freezer judged against no approved profile
fails OQ-12b with the alarms it did not raise, and a refusal the site does not cause fails its case."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.qualify.oq.protocol import PROTOCOL_DIR, load_protocol
from gateway.qualify.oq.runner import run_protocol

DEVICES = PROTOCOL_DIR / "oq-devices.yaml"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_shipped_device_protocol_passes_and_writes_evidence(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "qualify", "oq", "--protocol", "oq-devices", "-o", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evidence = json.loads(proc.stdout)
    items = {item["id"]: item for item in evidence["items"]}
    assert list(items) == [c.id for c in load_protocol(DEVICES).cases]
    assert all(item["passed"] for item in items.values()), [i["observed"] for i in items.values() if not i["passed"]]
    assert "refused: dins: DIN 'G123498654321X': check character is X" in items["OQ-19"]["observed"]
    assert "'value': 'refused', 'quality': 'Bad_ConfigurationError', 'detail': 'no Basic256Sha256 SignAndEncrypt " \
           "endpoint'}; observed 1" in items["OQ-10b"]["observed"]
    assert "'detail': 'is not in trusted_server_certificates'" in items["OQ-10c"]["observed"]
    # the gateway's own certificate, expired the day before, refused by name; the valid one delivers
    assert "'quality': 'Bad_ConfigurationError', 'detail': 'expired_cert.der expired on'}; observed 1" \
        in items["OQ-10d"]["observed"]
    assert "'equipment': 'CP-F', 'parameter': 'temperature', 'quality': 'Good', 'lot': 'LOT-OQ-0010D'}; observed" \
        in items["OQ-10d"]["observed"]
    assert "'detail': 'the server refused the anonymous login (BadIdentityTokenRejected)'}; observed 1" \
        in items["OQ-10e"]["observed"]
    assert "'equipment': 'CP-H', 'parameter': 'temperature', 'quality': 'Good', 'lot': 'LOT-OQ-0010E'}; observed" \
        in items["OQ-10e"]["observed"]
    # a hung server: one loss naming the dead session, nothing Good in the gap, a new session and Good data after
    hang = items["OQ-10f"]
    assert "'value': 'lost', 'quality': 'Bad_CommunicationError', 'detail': 'session lost'}; observed 1" \
        in hang["observed"]
    assert "observed 1 window(s)" in hang["observed"] and "; 0 such record(s)" in hang["observed"]
    assert any("communication lost within 4 s of the hang" in s and "-> after " in s for s in hang["steps"])
    assert any("processor session_count = 1" in s for s in hang["steps"])
    (plot,) = items["OQ-12b"]["attachments"].values()
    assert plot.startswith("<svg") and "tolerance band" in plot and "approved profile" in plot
    html = next(tmp_path.glob("*.html")).read_text()
    assert "OQ-12b" in html and "chamber vs approved profile" in html


def unjudged_freezer_protocol(tmp_path: Path) -> Path:
    """OQ-12b against a site whose freezer has no approved profile: the run is recorded but never judged."""
    site = (PROTOCOL_DIR / "sites" / "freezer-run.yaml").read_text()
    unjudged = site.replace("approved_profiles: [classic-cell-therapy]", "approved_profiles: []")
    assert unjudged != site
    (tmp_path / "unjudged.yaml").write_text(unjudged)
    path = tmp_path / "broken.yaml"
    path.write_text(
        "title: OQ-12b against a gateway that does not judge the freezing profile\n"
        "cases:\n"
        "  - id: OQ-12b\n"
        "    title: Freezer profile conformance\n"
        "    requirements: [URS-ALM-02]\n"
        "    site: unjudged.yaml\n"
        "    plots: [freezer]\n"
        "    expected: a deviation alarm naming the step while the LN2 supply is empty\n"
        "    steps:\n"
        "      - wait_for: {records: {equipment: CRF-1, parameter: profile_step, value: 5, min_count: 1}}\n"
        "      - inject: {sim: freezer, fault: ln2_empty}\n"
        "      - wait_for: {records: {equipment: CRF-1, parameter: profile_step, value: 6, min_count: 1}}\n"
        "    accept:\n"
        "      - records: {equipment: CRF-1, parameter: profile_approval, value: normal, count: 1}\n"
        "      - records: {equipment: CRF-1, parameter: chamber_profile_deviation, value: deviation, count: 1}\n"
    )
    return path


async def test_a_freezer_judged_against_no_approved_profile_fails_the_conformance_case(tmp_path: Path) -> None:
    err = io.StringIO()
    evidence, _ = await run_protocol(unjudged_freezer_protocol(tmp_path), stderr=err)
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected exactly 1 record(s) {'equipment': 'CRF-1', 'parameter': 'profile_approval', 'value': " \
           "'normal'}; observed 0" in item.observed
    assert "FAIL: expected exactly 1 record(s) {'equipment': 'CRF-1', 'parameter': 'chamber_profile_deviation'" \
           in item.observed
    assert "OQ-12b FAIL" in err.getvalue()


async def test_a_site_naming_a_certificate_the_case_does_not_make_fails_in_one_line(tmp_path: Path) -> None:
    site = (PROTOCOL_DIR / "sites" / "processor-opcua-security.yaml").read_text()
    (tmp_path / "site.yaml").write_text(site.replace("${pki.gateway.key}", "${pki.operator.key}"))
    path = tmp_path / "p.yaml"
    path.write_text(
        "title: a client key the case never made\n"
        "cases:\n"
        "  - id: OQ-10b\n"
        "    title: security\n"
        "    requirements: [URS-IF-UA-01]\n"
        "    site: site.yaml\n"
        "    pki: {clients: [gateway]}\n"
        "    expected: refused\n"
        "    steps: [{wait_for: {seconds: 0}}]\n"
        "    accept: [{verify: ok}]\n"
    )
    evidence, _ = await run_protocol(path, work_dir=tmp_path / "work", stderr=io.StringIO())
    (item,) = evidence.items
    assert not item.passed
    assert item.observed.endswith("placeholder ${pki.operator.key} names no pki client of the case")
    assert (tmp_path / "work" / "OQ-10b" / "pki" / "gateway_cert.der").exists()


async def test_a_connection_pinning_the_servers_own_certificate_fails_the_untrusted_case(tmp_path: Path) -> None:
    """The refusal comes from the pin alone: pin the certificate the server presents and the case must fail."""
    site = (PROTOCOL_DIR / "sites" / "processor-opcua-untrusted.yaml").read_text()
    trusting = site.replace('trusted_server_certificates: ["${pki.other.cert}"]',
                            'trusted_server_certificates: ["${sim.secure.certificate}"]')
    assert trusting != site
    (tmp_path / "trusting.yaml").write_text(trusting)
    text = (PROTOCOL_DIR / "oq-devices.yaml").read_text().replace("site: processor-opcua-untrusted",
                                                                    f"site: {tmp_path / 'trusting.yaml'}")
    refusal_wait = ("      - wait_for: {records: {equipment: CP-C, parameter: communication, value: refused,"
                    " min_count: 1}}\n")
    assert refusal_wait in text
    text = text.replace(refusal_wait, "")  # nothing to wait for when nothing is refused
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    evidence, _ = await run_protocol(path, case_ids=["OQ-10c"], work_dir=tmp_path / "work", stderr=io.StringIO())
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected exactly 1 record(s) {'equipment': 'CP-C', 'parameter': 'communication', 'value': 'refused'" \
        in item.observed
    assert "FAIL: expected no record {'equipment': 'CP-C', 'quality': 'Good'}" in item.observed


async def test_a_valid_certificate_in_place_of_the_expired_one_fails_the_expiry_case(tmp_path: Path) -> None:
    """The refusal comes from the expiry alone: give CP-E the valid certificate and the case must fail."""
    site = (PROTOCOL_DIR / "sites" / "processor-opcua-expired.yaml").read_text()
    renewed = site.replace("${pki.expired.cert}", "${pki.gateway.cert}").replace("${pki.expired.key}",
                                                                                  "${pki.gateway.key}")
    assert renewed != site
    (tmp_path / "renewed.yaml").write_text(renewed)
    text = (PROTOCOL_DIR / "oq-devices.yaml").read_text().replace("site: processor-opcua-expired",
                                                                    f"site: {tmp_path / 'renewed.yaml'}")
    refusal_wait = ("      - wait_for: {records: {equipment: CP-E, parameter: communication, value: refused,"
                    " min_count: 1}}\n")
    assert refusal_wait in text
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(refusal_wait, ""))  # nothing to wait for when nothing is refused
    evidence, _ = await run_protocol(path, case_ids=["OQ-10d"], work_dir=tmp_path / "work", stderr=io.StringIO())
    (item,) = evidence.items
    assert not item.passed
    assert "FAIL: expected exactly 1 record(s) {'equipment': 'CP-E', 'parameter': 'communication', 'value': 'refused'" \
        in item.observed
    assert "FAIL: expected no record {'equipment': 'CP-E', 'quality': 'Good'}" in item.observed
