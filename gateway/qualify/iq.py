"""Installation qualification: is this machine set up the way the site file and the approved baseline say?

Each check is an :class:`~gateway.qualify.evidence.Item` with an id, what was expected, what was observed
and a verdict. A check that passes but deserves a reviewer's eye (a journal on tmpfs, a certificate close
to expiry) carries a warning. Nothing here changes the installation except a probe file (and a probe
SQLite file) created and removed in the journal's folder, which is created if it does not exist yet.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel

from gateway.config import LoadedSite, YamlDocument
from gateway.errors import ConfigError, GatewayError
from gateway.qualify.baseline import baseline_path, load_without_sims, read_baseline
from gateway.qualify.evidence import Evidence, Item, environment, ntp_synchronized, software_manifest
from gateway.runtime import check_site

MIN_PYTHON = (3, 11)
CERT_WARN_DAYS = 30
#: Filesystems a journal must not live on: SQLite's WAL needs local locking and a real fsync.
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs", "fuse.glusterfs"}
VOLATILE_FS = {"tmpfs", "ramfs"}
_NOT_CHECKED = "not checked: the site file does not load"

Progress = Callable[[Item], None]


@dataclass
class _Check:
    """An item being built: started now, ended when the verdict is given."""

    id: str
    title: str
    requirement_ids: list[str]
    expected: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attachments: dict[str, str] = field(default_factory=dict)

    def step(self, text: str) -> None:
        self.steps.append(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {text}")

    def done(self, passed: bool, observed: str) -> Item:
        return Item(self.id, self.title, self.requirement_ids, self.expected, observed, passed, self.started,
                    datetime.now(UTC), self.steps, self.attachments, self.warnings)


def run_iq(site_file: Path, *, progress: Progress | None = None) -> Evidence:
    """Run every IQ check against ``site_file`` and the installed software; return the evidence."""
    started = datetime.now(UTC)
    items: list[Item] = []

    def add(item: Item) -> None:
        items.append(item)
        if progress is not None:
            progress(item)

    software = software_manifest()
    baseline, baseline_problem = _baseline(site_file)
    add(_python())
    add(_packages(software))
    add(_code(software, baseline, baseline_problem, site_file))
    loaded, config_item = _config(site_file, baseline, baseline_problem)
    add(config_item)
    notes: list[str] = []
    if loaded is None:
        for check in _SITE_CHECKS:
            c = _Check(*check)
            c.step("skipped")
            add(c.done(False, _NOT_CHECKED))
    else:
        raw = YamlDocument(site_file).data
        if loaded.site.simulators:
            notes.append(
                f"This site starts {len(loaded.site.simulators)} simulator(s) "
                f"({', '.join(s.name for s in loaded.site.simulators)}): it is a qualification rig, not a "
                "production installation; simulator endpoints are not checked as site hardware."
            )
        add(_journal_folder(loaded))
        add(_journal_storage(loaded))
        add(_disk(loaded))
        add(_clock())
        add(_ports(loaded, raw))
        add(_certificates(loaded))
        add(_serial_ports(loaded, raw))
    config_hash = loaded.config_hash if loaded is not None else ""
    return Evidence(
        kind="IQ", title=f"Installation qualification of {site_file.name}", config_path=str(site_file.resolve()),
        config_hash=config_hash, started=started, ended=datetime.now(UTC), items=items,
        environment=environment(), software=software, notes=notes,
    )


_SITE_CHECKS: list[tuple[str, str, list[str], str]] = [
    ("IQ-05", "Journal folder exists and is writable", ["21 CFR 11.10(c)", "Annex 11 §7.1"],
     "the journal's folder exists (or is created) and a file can be written, synced and removed there"),
    ("IQ-06", "Journal on durable local storage with synchronous=full",
     ["21 CFR 11.10(c)", "Annex 11 §7.1", "ALCOA+ Enduring"],
     "a local, non-volatile filesystem; SQLite WAL with synchronous=full (a committed record survives power loss)"),
    ("IQ-07", "Free disk for the journal", ["Annex 11 §7.1", "Annex 11 §16"],
     "free space ≥ min_free_mb plus room for the journal to reach quota_mb"),
    ("IQ-08", "Clock in UTC and synchronised", ["21 CFR 11.10(e)", "Annex 11 §12.4", "ALCOA+ Contemporaneous"],
     "records are stamped in UTC; NTP synchronised where the OS reports it"),
    ("IQ-09", "Network ports the site needs are free", ["Annex 11 §4.3"],
     "every listen port of the site (operator API, OPC UA server sink) can be bound"),
    ("IQ-10", "Certificates present, parseable and unexpired", ["21 CFR 11.30", "Annex 11 §12"],
     f"every certificate named exists, parses and is valid now (warning within {CERT_WARN_DAYS} days of expiry)"),
    ("IQ-11", "Serial ports present", ["21 CFR 11.10(h)", "Annex 11 §4.3"],
     "every serial device the site names exists"),
]
_SITE = {c[0]: c for c in _SITE_CHECKS}


def _check(item_id: str) -> _Check:
    return _Check(*_SITE[item_id])


def _baseline(site_file: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return read_baseline(site_file), None
    except GatewayError as exc:
        return None, str(exc)


def _python() -> Item:
    c = _Check("IQ-01", "Python version", ["GAMP 5 Cat. 1", "Annex 11 §4.3"],
               f"CPython ≥ {'.'.join(map(str, MIN_PYTHON))}")
    c.step(f"read sys.version_info ({sys.executable})")
    version = ".".join(map(str, sys.version_info[:3]))
    return c.done(sys.version_info[:2] >= MIN_PYTHON, f"Python {version} ({sys.implementation.name})")


def _packages(software: dict[str, Any]) -> Item:
    c = _Check("IQ-02", "Package versions match the installed distribution's requirements",
               ["GAMP 5 Cat. 1/3", "Annex 11 §4.5", "Annex 11 §10"],
               "every runtime dependency is installed in a version its requirement allows")
    c.step("read the requirements of the installed distribution and each package's installed version")
    deps = software["dependencies"]
    lines = [f"{d['name']:<22} required {d['required']:<16} installed {d['installed'] or 'MISSING':<12} "
             f"{ {True: 'ok', False: 'NO', None: 'not checked'}[d['ok']]}" for d in deps]
    c.attachments["dependency versions"] = "\n".join(lines) or "no requirements found"
    bad = [d for d in deps if d["ok"] is False]
    unchecked = [d["name"] for d in deps if d["ok"] is None]
    if unchecked:
        c.warnings.append(f"version ranges not checked (no version parser): {', '.join(unchecked)}")
    if not deps:
        return c.done(False, f"the distribution {software['name']} is not installed (no metadata)")
    if bad:
        return c.done(False, "; ".join(f"{d['name']} {d['installed'] or 'missing'} (needs {d['required']})"
                                       for d in bad))
    return c.done(True, f"{len(deps)} packages match: " + ", ".join(f"{d['name']} {d['installed']}" for d in deps))


def _code(software: dict[str, Any], baseline: dict[str, Any] | None, problem: str | None, site_file: Path) -> Item:
    c = _Check("IQ-03", "Installed code manifest", ["21 CFR 11.10(a)", "21 CFR 11.10(k)", "Annex 11 §10"],
               "the sha256 manifest of the installed code is recorded and equals the approved baseline when one exists")
    c.step(f"hashed {software['file_count']} .py/.yaml files of the installed gateway")
    c.attachments["code manifest"] = "\n".join(f"{h}  {p}" for p, h in software["files"].items())
    observed = f"{software['name']} {software['version']}, manifest hash {software['manifest_hash']}"
    if problem is not None:
        return c.done(False, f"{observed}; {problem}")
    if baseline is None:
        c.step(f"no baseline at {baseline_path(site_file)}")
        return c.done(True, f"{observed}; no approved baseline yet (record one with `qualify baseline`)")
    c.step(f"compared with the baseline approved by {baseline.get('approved_by')} at {baseline.get('time')}")
    if baseline["software_hash"] == software["manifest_hash"]:
        return c.done(True, f"{observed}; equals the approved baseline")
    old = baseline.get("files") if isinstance(baseline.get("files"), dict) else {}
    changed = sorted(p for p in old.keys() | software["files"].keys() if old.get(p) != software["files"].get(p))
    return c.done(False, f"{observed}; DIFFERS from the approved {baseline['software_hash']}"
                  + (f" (changed: {', '.join(changed[:10])})" if changed else ""))


def _config(site_file: Path, baseline: dict[str, Any] | None, problem: str | None) -> tuple[LoadedSite | None, Item]:
    c = _Check("IQ-04", "Site configuration valid and under change control",
               ["21 CFR 11.10(k)", "Annex 11 §10", "Annex 11 §4.3"],
               "the site file and every map it names load without error (check-config); its hash equals the "
               "approved baseline when one exists")
    c.step(f"loaded {site_file} and everything it refers to, built every equipment pipeline")
    try:
        loaded = load_without_sims(site_file)
        check_site(loaded)
    except ConfigError as exc:
        c.attachments["config errors"] = "\n".join(exc.problems)
        return None, c.done(False, f"{len(exc.problems)} config error(s): {exc.problems[0]}")
    except GatewayError as exc:
        return None, c.done(False, str(exc))
    observed = (f"loads: gateway {loaded.site.gateway.id}, {len(loaded.equipment)} equipment, "
                f"{len(loaded.site.sinks)} sinks; config hash {loaded.config_hash}")
    if problem is not None:
        return loaded, c.done(False, f"{observed}; {problem}")
    if baseline is None:
        return loaded, c.done(True, f"{observed}; no approved baseline yet")
    if baseline["config_hash"] == loaded.config_hash:
        return loaded, c.done(True, f"{observed}; equals the approved baseline")
    return loaded, c.done(False, f"{observed}; DIFFERS from the approved {baseline['config_hash']}")


def _journal_folder(loaded: LoadedSite) -> Item:
    c = _check("IQ-05")
    folder = loaded.site.journal.path.parent
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        c.step(f"{folder} {'exists' if existed else 'created'}")
        fd, name = tempfile.mkstemp(prefix=".iq-probe-", dir=folder)
        try:
            os.write(fd, b"iq probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
        c.step("wrote, synced and removed a probe file")
    except OSError as exc:
        return c.done(False, f"{folder}: not writable ({exc.strerror or exc})")
    return c.done(True, f"{folder} {'exists' if existed else 'created'} and is writable")


def _journal_storage(loaded: LoadedSite) -> Item:
    c = _check("IQ-06")
    cfg = loaded.site.journal
    folder = cfg.path.parent
    fs, mount = filesystem_of(folder)
    c.step(f"filesystem of {folder}: {fs or 'unknown'} mounted at {mount or 'unknown'}")
    problems = []
    if cfg.synchronous not in ("full", "extra"):
        problems.append(f"journal.synchronous is {cfg.synchronous} (a power loss may take back committed records)")
    if fs in NETWORK_FS:
        problems.append(f"{fs} is a network filesystem: SQLite's WAL needs a local disk")
    if fs in VOLATILE_FS:
        c.warnings.append(f"the journal is on {fs}: lost at reboot, acceptable for a qualification rig only")
    try:
        probe = _sqlite_probe(folder, cfg.synchronous)
        c.step(f"opened a probe SQLite file there: journal_mode={probe[0]}, synchronous={probe[1]}")
    except (OSError, sqlite3.Error) as exc:
        problems.append(f"SQLite cannot open a WAL journal there: {exc}")
        probe = ("?", "?")
    observed = (f"{fs or 'unknown filesystem'} at {mount or '?'}; synchronous={cfg.synchronous}; "
                f"SQLite journal_mode={probe[0]}, synchronous level {probe[1]}")
    return c.done(not problems, "; ".join([observed, *problems]))


def _sqlite_probe(folder: Path, synchronous: str) -> tuple[str, int]:
    fd, name = tempfile.mkstemp(prefix=".iq-probe-", suffix=".sqlite", dir=folder)
    os.close(fd)
    try:
        conn = sqlite3.connect(name)
        try:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            conn.execute("CREATE TABLE t (x)")
            conn.execute("INSERT INTO t VALUES (1)")
            conn.commit()
        finally:
            conn.close()
        if mode != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
        return mode, level
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


def filesystem_of(path: Path) -> tuple[str | None, str | None]:
    """The filesystem type and mount point holding ``path`` (Linux /proc/mounts), or (None, None)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None, None
    target = path.resolve()
    best: tuple[str | None, str | None] = (None, None)
    best_len = -1
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        if (target == Path(mount) or Path(mount) in target.parents) and len(mount) > best_len:
            best, best_len = (parts[2], mount), len(mount)
    return best


def _disk(loaded: LoadedSite) -> Item:
    c = _check("IQ-07")
    cfg = loaded.site.journal
    usage = shutil.disk_usage(cfg.path.parent)
    size = sum(p.stat().st_size for p in _journal_files(cfg.path))
    c.step(f"disk usage of {cfg.path.parent}: {usage.free / 1e6:.0f} MB free of {usage.total / 1e6:.0f} MB; "
           f"journal now {size / 1e6:.1f} MB")
    need_mb = cfg.min_free_mb + max(0.0, (cfg.quota_mb or 0.0) - size / 1e6)
    if cfg.quota_mb is None:
        c.warnings.append("journal.quota_mb is not set: no alarm before the disk fills")
    observed = (f"{usage.free / 1e6:.0f} MB free; needed {need_mb:.0f} MB (min_free_mb {cfg.min_free_mb:g}"
                + (f" + quota_mb {cfg.quota_mb:g} − journal {size / 1e6:.1f} MB)" if cfg.quota_mb else ")"))
    return c.done(usage.free / 1e6 >= need_mb, observed)


def _journal_files(path: Path) -> Iterator[Path]:
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            yield candidate


def _clock() -> Item:
    c = _check("IQ-08")
    now = datetime.now(UTC)
    local = datetime.now().astimezone()
    offset = local.utcoffset() or timedelta(0)
    c.step(f"system clock {now.isoformat(timespec='seconds')}; local zone {local.tzname()} "
           f"(UTC{_offset(offset)})")
    synced = ntp_synchronized()
    c.step("asked `timedatectl show -p NTPSynchronized`: " + {True: "yes", False: "no", None: "not reported"}[synced])
    if offset != timedelta(0):
        c.warnings.append(f"the host's local zone is UTC{_offset(offset)}; records are stamped in UTC regardless")
    if synced is None:
        c.warnings.append("NTP sync not reported by the OS: check the time service by hand")
    observed = (f"records stamped in UTC; host zone {local.tzname()} (UTC{_offset(offset)}); NTP synchronised: "
                + {True: "yes", False: "NO", None: "not reported"}[synced])
    return c.done(synced is not False, observed)


def _offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _ports(loaded: LoadedSite, raw: Any) -> Item:
    c = _check("IQ-09")
    wanted: list[tuple[str, str, int]] = []
    if loaded.site.api is not None:
        wanted.append(("operator API", loaded.site.api.host, loaded.site.api.port))
    raw_sinks = raw.get("sinks") if isinstance(raw, dict) else None
    for i, sink in enumerate(loaded.site.sinks):
        endpoint = getattr(sink, "endpoint", None)
        if sink.type != "opcua-server" or not isinstance(endpoint, str) or not sink.enabled:
            continue
        if _placeholder(raw_sinks, i, "endpoint"):
            c.step(f"sink {sink.name}: endpoint is a simulator placeholder, not checked")
            continue
        url = urlparse(endpoint)
        wanted.append((f"sink {sink.name}", url.hostname or "0.0.0.0", url.port or 4840))
    taken = []
    for what, host, port in wanted:
        error = port_free(host, port)
        c.step(f"bind {host}:{port} ({what}): " + (error or "free"))
        if error:
            taken.append(f"{what} {host}:{port} ({error})")
    if not wanted:
        return c.done(True, "the site listens on no port")
    if taken:
        return c.done(False, "in use: " + "; ".join(taken))
    return c.done(True, "free: " + ", ".join(f"{w} {h}:{p}" for w, h, p in wanted))


def port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now (as a server would), else why not."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"cannot resolve: {exc.strerror or exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        if os.name != "nt":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers do
        try:
            s.bind(address)
            s.listen(1)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _certificates(loaded: LoadedSite) -> Item:
    c = _check("IQ-10")
    found = list(_named_files(loaded))
    certs = [(owner, name, path) for owner, name, path in found if _is_certificate_field(name)]
    keys = [(owner, name, path) for owner, name, path in found if _is_key_field(name)]
    if not certs and not keys:
        c.step("no certificate or key named in the site file")
        return c.done(True, "no certificates named")
    try:
        from cryptography import x509  # the OPC UA stack's dependency; read lazily
    except ImportError:
        return c.done(False, "cannot parse certificates: the cryptography package is not installed")
    now = datetime.now(UTC)
    problems, seen = [], []
    for owner, name, path in certs:
        try:
            data = path.read_bytes()
            parsed = (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                      else [x509.load_der_x509_certificate(data)])
        except (OSError, ValueError) as exc:
            problems.append(f"{owner} {name} {path}: {getattr(exc, 'strerror', None) or exc}")
            c.step(f"{owner} {name}: {path}: unreadable")
            continue
        for cert in parsed:
            subject = cert.subject.rfc4514_string() or "(no subject)"
            until = cert.not_valid_after_utc
            c.step(f"{owner} {name}: {path}: {subject}, valid {cert.not_valid_before_utc:%Y-%m-%d} to {until:%Y-%m-%d}")
            if until <= now:
                problems.append(f"{owner} {name} {path}: {subject} expired {until:%Y-%m-%d}")
            elif cert.not_valid_before_utc > now:
                start = cert.not_valid_before_utc
                problems.append(f"{owner} {name} {path}: {subject} not valid before {start:%Y-%m-%d}")
            elif until - now < timedelta(days=CERT_WARN_DAYS):
                c.warnings.append(f"{owner} {name}: {subject} expires {until:%Y-%m-%d}")
            seen.append(f"{subject} until {until:%Y-%m-%d}")
    for owner, name, path in keys:
        if not path.is_file():
            problems.append(f"{owner} {name} {path}: missing")
        c.step(f"{owner} {name}: {path}: " + ("present" if path.is_file() else "MISSING"))
    if problems:
        return c.done(False, "; ".join(problems))
    return c.done(True, f"{len(seen)} certificate(s) valid ({'; '.join(seen)}); {len(keys)} key file(s) present")


def _is_certificate_field(name: str) -> bool:
    return "cert" in name or name in ("ca_file", "cafile")


def _is_key_field(name: str) -> bool:
    return name.endswith("key") or name.endswith("key_file")


def _named_files(loaded: LoadedSite) -> Iterator[tuple[str, str, Path]]:
    """(owner, field name, path) for every Path field of the equipment and sinks that names a cert or key."""
    owners: list[tuple[str, BaseModel]] = [(f"equipment {eq.id}", eq) for eq in loaded.equipment]
    owners += [(f"sink {s.name}", s) for s in loaded.site.sinks]
    for owner, model in owners:
        for name, value in _fields(model):
            if not (_is_certificate_field(name) or _is_key_field(name)):
                continue
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, Path):
                    yield owner, name, item


def _fields(model: BaseModel) -> Iterator[tuple[str, Any]]:
    """Every leaf field as (name, value), nested sections included (a sink's ``tls:`` block)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _fields(value)
        else:
            yield name, value


def _serial_ports(loaded: LoadedSite, raw: Any) -> Item:
    c = _check("IQ-11")
    raw_eq = raw.get("equipment") if isinstance(raw, dict) else None
    present, missing, rig = [], [], []
    for i, eq in enumerate(loaded.equipment):
        for name in ("serial_port", "port"):
            value = getattr(eq, name, None)
            if not isinstance(value, str) or not value:
                continue
            if _placeholder(raw_eq, i, name):
                rig.append(eq.id)
                c.step(f"equipment {eq.id}: {name} is a simulator placeholder (qualification rig), not checked")
                continue
            if "://" in value:
                c.step(f"equipment {eq.id}: {name} {value} is a network URL, not a local device")
                continue
            exists = Path(value).exists()
            c.step(f"equipment {eq.id}: {value}: " + ("present" if exists else "MISSING"))
            (present if exists else missing).append(f"{eq.id} {value}")
    if rig:
        c.warnings.append(f"simulated serial lines ({', '.join(rig)}): a qualification rig, not site wiring")
    if missing:
        return c.done(False, "missing: " + ", ".join(missing))
    if not present and not rig:
        return c.done(True, "the site names no local serial device")
    return c.done(True, ", ".join(["present: " + ", ".join(present)] if present else [])
                  + ("; " if present and rig else "") + (f"{len(rig)} simulated" if rig else ""))


def _placeholder(raw_list: Any, index: int, key: str) -> bool:
    """Whether the raw YAML value at ``raw_list[index][key]`` is a ``${sim.…}`` placeholder."""
    try:
        value = raw_list[index][key]
    except (TypeError, IndexError, KeyError):
        return False
    return isinstance(value, str) and "${sim." in value
