"""The command line as a user meets it: exit codes, one-line errors, and kill -9 losing nothing committed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.journal import JournalReader

DEMO_LIKE = """\
gateway: {id: gw-cli}
journal: {path: journal.sqlite}
supervisor: {backoff_initial_s: 0.1, backoff_max_s: 0.5}
simulators:
  - {name: pc, kind: particle-counter, options: {profile: lighthouse, sample_time_s: 1, seed: 4}}
equipment:
  - id: PC-1
    class: particle_counter
    kind: modbus
    transport: tcp
    host: ${sim.pc.host}
    port: ${sim.pc.port}
    device_id: 1
    register_map: lighthouse-remote
    poll_interval_s: 0.1
    particle_limits: {grade: A, state: in_operation}
"""


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(DEMO_LIKE)
    return path


def test_check_config_ok_and_json(site: Path) -> None:
    done = cli("check-config", str(site), "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["ok"] and body["equipment"][0]["id"] == "PC-1" and len(body["config_hash"]) == 64


def test_check_config_bad_file_gives_one_line_per_problem_and_exit_1(site: Path) -> None:
    site.write_text(DEMO_LIKE.replace("device_id: 1", "device_id: 300").replace("poll_interval_s: 0.1", "pol: 1"))
    done = cli("check-config", str(site))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert any(f"{site}:13: equipment.0.device_id:" in line for line in lines), lines
    assert any(f"{site}:15: equipment.0.pol: unknown field" in line for line in lines), lines
    assert all(line.startswith("config error: ") for line in lines)


def test_check_config_bad_register_map_names_the_map(site: Path) -> None:
    site.write_text(DEMO_LIKE.replace("register_map: lighthouse-remote", "register_map: no-such-map"))
    done = cli("check-config", str(site))
    assert done.returncode == 1 and "no-such-map" in done.stderr


def test_read_once_prints_one_normalised_sample_and_journals_nothing(site: Path, tmp_path: Path) -> None:
    done = cli("read-once", "-c", str(site), "PC-1", "--json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    params = {r["parameter"] for r in records}
    assert {"particle_count_0_5um", "particle_concentration_0_5um", "temperature"} <= params
    assert not (tmp_path / "journal.sqlite").exists()


def test_read_once_unknown_equipment(site: Path) -> None:
    done = cli("read-once", "-c", str(site), "NOPE")
    assert done.returncode == 1 and "no equipment 'NOPE' (configured: PC-1)" in done.stderr


def test_schema_and_sim_list() -> None:
    schema = json.loads(cli("schema").stdout)
    assert "equipment" in schema["properties"]
    assert "modbus" in json.dumps(schema)
    listed = cli("sim", "--list")
    assert listed.returncode == 0 and "particle-counter" in listed.stdout


def test_verify_without_a_journal_says_what_to_do(tmp_path: Path) -> None:
    done = cli("verify", "--journal", str(tmp_path / "missing.sqlite"))
    assert done.returncode == 1 and "run the gateway first" in done.stderr


def wait_for_records(path: Path, count: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if path.exists():
            try:
                with JournalReader(path) as reader:
                    if (last := reader.last_seq()) >= count:
                        return last
            except Exception:
                pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} records after {timeout} s")


def test_kill_9_during_ingest_leaves_a_verifiable_gap_free_journal(site: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    with subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "-c", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as proc:
        try:
            seen = wait_for_records(journal, 60, proc)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    done = cli("verify", "--journal", str(journal), "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], report
    assert report["last_seq"] >= seen  # nothing committed before the kill was lost

    # the gateway starts again on the same journal and carries the chain on
    rerun = cli("run", "-c", str(site), "--for", "2.5")
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads(cli("verify", "--journal", str(journal), "--json").stdout)
    assert again["ok"] and again["last_seq"] > report["last_seq"]


def test_an_edited_record_fails_verify_naming_its_seq(site: Path, tmp_path: Path) -> None:
    assert cli("run", "-c", str(site), "--for", "2.5").returncode == 0
    journal = tmp_path / "journal.sqlite"
    with sqlite3.connect(journal) as conn:
        (payload,) = conn.execute("SELECT payload FROM records WHERE seq = 7").fetchone()
        body = json.loads(payload)
        body["detail"] = "edited after the fact"
        conn.execute("UPDATE records SET payload = ? WHERE seq = 7", (json.dumps(body).encode(),))
    done = cli("verify", "-c", str(site))
    assert done.returncode == 1
    assert "seq 7" in done.stderr


def test_json_logs_are_one_object_per_line_on_stderr(site: Path) -> None:
    done = cli("--log-format", "json", "run", "-c", str(site), "--for", "1.5")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    started = next(e for e in events if e["event"] == "gateway starting")
    assert started["gateway_id"] == "gw-cli" and started["level"] == "info" and "timestamp" in started
    assert done.stdout == ""  # records only with --show


def test_sim_runs_a_simulator_by_hand_and_prints_its_endpoint() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "sim", "particle-counter", "--profile", "metone6000", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            endpoint = json.loads(proc.stdout.readline())
            assert endpoint["endpoint"].startswith("tcp://127.0.0.1:") and endpoint["port"] > 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    assert proc.returncode == 0


def test_a_full_disk_stops_the_gateway_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(DEMO_LIKE.replace("journal: {path: journal.sqlite}",
                                      "journal: {path: journal.sqlite, min_free_mb: 1000000000}"))
    done = cli("run", "-c", str(site), "--for", "20")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "refusing new records" in last, last
    assert "Traceback" not in done.stderr and "ExceptionGroup" not in done.stderr
