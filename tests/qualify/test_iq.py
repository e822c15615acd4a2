"""IQ as a QA reviewer meets it: a good installation passes with evidence; each bad one fails at the right item."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from gateway.qualify.evidence import Evidence
from gateway.qualify.iq import run_iq

from .support import SITE, cli, days, write_certificate, write_site


def _item(evidence: Evidence, item_id: str):  # type: ignore[no-untyped-def]
    return next(i for i in evidence.items if i.id == item_id)


def test_iq_on_a_good_site_passes_and_writes_json_and_html(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    done = cli("qualify", "iq", "-c", str(site), "--json")
    assert done.returncode == 0, done.stderr
    assert "IQ-05 PASS" in done.stderr and "IQ PASS" in done.stderr  # progress, one line per item
    out = tmp_path / "qualification"  # the default: next to the site file
    json_files, html_files = sorted(out.glob("iq-*.json")), sorted(out.glob("iq-*.html"))
    assert len(json_files) == 1 and len(html_files) == 1
    body = json.loads(json_files[0].read_text())
    assert body == json.loads(done.stdout)
    assert body["kind"] == "IQ" and body["verdict"] == "PASS" and body["counts"]["failed"] == 0
    assert [i["id"] for i in body["items"]] == [f"IQ-{n:02d}" for n in range(1, 12)]
    assert all(i["expected"] and i["observed"] and i["verdict"] == "PASS" for i in body["items"])
    assert len(body["config_hash"]) == 64 and len(body["software"]["manifest_hash"]) == 64
    assert body["software"]["files"]["gateway/qualify/iq/__init__.py"]  # the code manifest names each file
    assert body["environment"]["python"] and body["environment"]["clock_utc"].endswith("+00:00")
    assert "21 CFR 11.10(c)" in body["traceability"] and "IQ-05" in body["traceability"]["21 CFR 11.10(c)"]
    assert [s["role"] for s in body["signatures"]] == ["Prepared by", "Reviewed by", "Approved by"]
    html = html_files[0].read_text()
    assert 'class="verdict PASS"' in html and body["config_hash"] in html
    assert html.count('<tr class="trace">') == len(body["traceability"])
    assert "Approved by" in html and "<link" not in html and "<script" not in html  # self-contained


def test_unwritable_journal_folder_fails_iq_05(tmp_path: Path) -> None:
    (tmp_path / "journal").write_text("a file where the journal's folder should be")
    evidence = run_iq(write_site(tmp_path))
    assert not evidence.passed
    failed = [i.id for i in evidence.items if not i.passed]
    assert "IQ-05" in failed, failed
    assert "not writable" in _item(evidence, "IQ-05").observed


def test_expired_certificate_fails_iq_10_and_one_near_expiry_warns(tmp_path: Path) -> None:
    write_certificate(tmp_path / "old-ca.pem", not_before=days(-400), not_after=days(-1), name="old-ca")
    site = write_site(tmp_path, SITE.replace("equipment: []", """\
sinks:
  - {name: mes, type: http, url: "https://127.0.0.1:9/records", ca_file: old-ca.pem}
equipment: []"""))
    evidence = run_iq(site)
    item = _item(evidence, "IQ-10")
    assert not item.passed and "CN=old-ca expired" in item.observed and "sink mes ca_file" in item.observed
    assert [i.id for i in evidence.items if not i.passed] == ["IQ-10"]

    write_certificate(tmp_path / "old-ca.pem", not_before=days(-400), not_after=days(10), name="old-ca")
    item = _item(run_iq(site), "IQ-10")
    assert item.passed and any("expires" in w for w in item.warnings)


def test_taken_api_port_fails_iq_09(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        site = write_site(tmp_path, SITE + f"api: {{listen: '127.0.0.1:{port}'}}\n")
        done = cli("qualify", "iq", "-c", str(site), "-o", str(tmp_path / "evidence"))
    assert done.returncode == 1
    assert "IQ-09 FAIL" in done.stderr and f"operator API 127.0.0.1:{port}" in done.stderr, done.stderr
    body = json.loads(next((tmp_path / "evidence").glob("iq-*.json")).read_text())
    assert body["verdict"] == "FAIL" and [i["id"] for i in body["items"] if not i["passed"]] == ["IQ-09"]


def test_a_broken_site_file_fails_iq_04_and_the_site_checks_say_why(tmp_path: Path) -> None:
    evidence = run_iq(write_site(tmp_path, SITE.replace("gw-iq", "gw iq!")))
    assert not _item(evidence, "IQ-04").passed and _item(evidence, "IQ-01").passed
    assert all("does not load" in _item(evidence, f"IQ-{n:02d}").observed for n in range(5, 12))
