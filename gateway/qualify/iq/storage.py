"""IQ-05 to IQ-07, where the journal lives: a writable folder, a local durable filesystem SQLite can run a
synchronous WAL journal on, and free disk for it. A probe file (and a probe SQLite file) is created and
removed in the journal's folder, which is created if it does not exist yet."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gateway.config import LoadedSite
from gateway.qualify.evidence import Item
from gateway.qualify.iq.item import site_check

#: Filesystems a journal must not live on: SQLite's WAL needs local locking and a real fsync.
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs", "fuse.glusterfs"}
VOLATILE_FS = {"tmpfs", "ramfs"}


def journal_folder(loaded: LoadedSite) -> Item:
    c = site_check("IQ-05")
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


def journal_storage(loaded: LoadedSite) -> Item:
    c = site_check("IQ-06")
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


def free_disk(loaded: LoadedSite) -> Item:
    c = site_check("IQ-07")
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
