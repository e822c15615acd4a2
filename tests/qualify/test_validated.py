"""The validated-state lock: a baseline lets a validated run start; a changed site stops it, audited."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from gateway.journal import JournalReader

from .support import SITE, cli, write_site


def _trail(site: Path) -> list[dict]:  # type: ignore[type-arg]
    with JournalReader(site.parent / "journal" / "journal.sqlite") as reader:
        return reader.audit()


def test_validated_run_starts_on_the_baseline_and_is_refused_after_the_site_changes(tmp_path: Path) -> None:
    site = write_site(tmp_path)

    done = cli("run", "--validated", "-c", str(site), "--for", "0.2")
    assert done.returncode == 1
    assert "error: refusing a validated start: no approved baseline" in done.stderr, done.stderr

    done = cli("qualify", "baseline", "-c", str(site), "--by", "Q. Reviewer", "--reason", "CC-0042: IQ/OQ passed")
    assert done.returncode == 0, done.stderr
    baseline = json.loads((tmp_path / "site.baseline.json").read_text())
    assert baseline["approved_by"] == "Q. Reviewer" and baseline["reason"] == "CC-0042: IQ/OQ passed"
    assert len(baseline["config_hash"]) == 64 and len(baseline["software_hash"]) == 64

    done = cli("run", "--validated", "-c", str(site), "--for", "0.2")
    assert done.returncode == 0, done.stderr

    site.write_text(site.read_text().replace("min_free_mb: 1", "min_free_mb: 2"))
    done = cli("run", "--validated", "-c", str(site), "--for", "0.2")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "config hash" in errors[0] and "DIFFERS from the approved " + baseline["config_hash"][:16] in errors[0]
    assert "qualify baseline" in errors[0]  # what to do

    actions = [(e["action"], e["actor"]) for e in _trail(site)]
    assert actions[:2] == [("qualification.refused", "gateway"), ("qualification.baseline", "Q. Reviewer")]
    assert ("qualification.validated_start", "gateway") in actions and ("gateway.started", "gateway") in actions
    last = _trail(site)[-1]
    assert last["action"] == "qualification.refused"
    assert last["detail"]["approved_config_hash"] == baseline["config_hash"]
    assert last["detail"]["config_hash"] != baseline["config_hash"]
    assert [a for a, _ in actions].count("gateway.started") == 1  # the refused runs never started


def test_a_plain_run_ignores_the_baseline(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    done = cli("run", "-c", str(site), "--for", "0.2")
    assert done.returncode == 0, done.stderr
    assert "qualification" not in " ".join(e["action"] for e in _trail(site))


def test_baseline_refuses_while_the_gateway_serves_its_api(tmp_path: Path) -> None:
    with socket.socket() as holder:  # stands in for the running gateway's API
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        site = write_site(tmp_path, SITE + f"api: {{listen: '127.0.0.1:{port}'}}\n")
        done = cli("qualify", "baseline", "-c", str(site), "--by", "Q", "--reason", "r")
    assert done.returncode == 1 and "seems to be running" in done.stderr and "stop it" in done.stderr
    assert not (tmp_path / "site.baseline.json").exists()
