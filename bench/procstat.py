"""What the operating system and the gateway's /metrics say about a process the suite and soak benches started.

CPU, memory, descriptors and threads come from Linux /proc; the gateway's own counters (journal head and size,
sink backlog, devices up) from its Prometheus endpoint. Also how the benches stop a process they started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Metrics", "ProcSample", "proc_sample", "process_cpu_s", "scrape", "stop_process"]


def stop_process(proc: subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    """SIGTERM a process a bench started, then SIGKILL it if it does not exit within ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _stat_cpu_s(stat_path: str) -> float:
    """utime + stime of a /proc stat file, in seconds; 0 when it cannot be read (the process has gone)."""
    try:
        fields = Path(stat_path).read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process, all its threads (Linux /proc), 0 when it cannot be read."""
    return _stat_cpu_s(f"/proc/{pid}/stat")


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float
    #: CPU of the main thread alone (the event loop); the rest is other threads (journal writer, SQLite readers).
    main_thread_cpu_s: float
    rss_mb: float
    #: The anonymous part of the resident set (heap, stacks): where a leak shows; the rest is mapped files.
    anon_mb: float
    #: Peak resident set since the process started (VmHWM).
    hwm_mb: float
    fds: int
    threads: int


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kb_to_mb(value: str) -> float:
    return int(value.split()[0]) / 1024


def _thread_cpu_s(pid: int, tid: int) -> float:
    return _stat_cpu_s(f"/proc/{pid}/task/{tid}/stat")


def proc_sample(pid: int) -> ProcSample:
    """CPU, memory, open descriptors and threads of a live process (OSError when it has gone)."""
    status = _status(pid)
    return ProcSample(
        cpu_s=process_cpu_s(pid),
        main_thread_cpu_s=_thread_cpu_s(pid, pid),
        rss_mb=_kb_to_mb(status["VmRSS"]),
        anon_mb=_kb_to_mb(status["RssAnon"]),
        hwm_mb=_kb_to_mb(status["VmHWM"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
    )


@dataclass(frozen=True)
class Metrics:
    """The figures of the gateway's /metrics the benches use."""

    last_seq: int
    journal_bytes: int
    backlog: int
    devices: int
    devices_up: int
    device_failures: int
    #: Records committed per equipment since the gateway started.
    records: dict[str, int]


def scrape(port: int, timeout_s: float = 5.0) -> Metrics:
    """Read the operator API's Prometheus text (urllib: one short GET, no event loop needed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as reply:
        text = reply.read().decode()
    values: dict[str, float] = {}
    up = devices = 0
    backlog = failures = 0.0
    records: dict[str, int] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        metric = name.partition("{")[0]
        if metric == "cgt_device_up":
            devices += 1
            up += float(value) == 1.0
        elif metric == "cgt_sink_backlog_records":
            backlog += float(value)
        elif metric == "cgt_device_failures_total":
            failures += float(value)
        elif metric == "cgt_device_records_total":
            records[name.partition('equipment_id="')[2].partition('"')[0]] = int(float(value))
        else:
            values[metric] = float(value)
    return Metrics(
        last_seq=int(values.get("cgt_journal_last_seq", 0)),
        journal_bytes=int(values.get("cgt_journal_size_bytes", 0)),
        backlog=int(backlog),
        devices=devices,
        devices_up=up,
        device_failures=int(failures),
        records=records,
    )
