"""The validated-state lock: the approved configuration and software hashes, and the check before a validated run.

``qualify baseline`` writes ``<site>.baseline.json`` next to the site file (who approved, when, why, both
hashes and the per-file hashes, so a refusal can say what changed) and audits ``qualification.baseline``
in the site's journal. ``run --validated`` compares the site and the installed software with it and
refuses to start, audited as ``qualification.refused``, when either differs or no baseline exists; a
match is audited as ``qualification.validated_start``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import LoadedSite, load_site
from gateway.errors import GatewayError, JournalError
from gateway.journal import AuditEntry, Journal
from gateway.plugins import adapter_plugins
from gateway.qualify.evidence import software_manifest

BASELINE_FORMAT = 1


class NotValidated(GatewayError):
    """A validated run refused: the site or the software is not the approved baseline."""


def baseline_path(site_file: Path) -> Path:
    """``site.yaml`` → ``site.baseline.json`` in the same folder."""
    return site_file.with_name(f"{site_file.stem}.baseline.json")


def load_without_sims(site_file: Path) -> LoadedSite:
    """The site as check-config sees it: placeholders get stand-ins (the config hash does not depend on them)."""
    return load_site(site_file, adapter_plugins())


def read_baseline(site_file: Path) -> dict[str, Any] | None:
    """The recorded baseline, or None when there is none; GatewayError when it is unreadable."""
    path = baseline_path(site_file)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GatewayError(f"{path}: cannot read the baseline ({exc}); record it again with `qualify baseline`") \
            from exc
    if not isinstance(data, dict) or not {"config_hash", "software_hash"} <= data.keys():
        raise GatewayError(f"{path}: not a baseline file (no config_hash/software_hash)")
    return data


def record_baseline(site_file: Path, *, by: str, reason: str) -> dict[str, Any]:
    """Audit the baseline in the site's journal, then write the baseline file. The gateway must not be running.

    Blocking, with its own event loop for the journal: call it from a command, not from a running loop.
    """
    by, reason = by.strip(), reason.strip()
    if not by or not reason:
        raise GatewayError("a baseline needs who approves it (--by) and why (--reason)")
    loaded = load_without_sims(site_file)
    software = software_manifest()
    baseline = {
        "format": BASELINE_FORMAT,
        "site_file": str(site_file.resolve()),
        "gateway_id": loaded.site.gateway.id,
        "config_hash": loaded.config_hash,
        "software_version": software["version"],
        "software_hash": software["manifest_hash"],
        "approved_by": by,
        "reason": reason,
        "time": datetime.now(UTC).isoformat(),
        "files": software["files"],
    }
    _refuse_if_running(loaded)
    detail = {k: baseline[k] for k in ("config_hash", "software_hash", "software_version", "gateway_id")}
    asyncio.run(_audit(loaded, AuditEntry("qualification.baseline", str(site_file.resolve()), reason, detail,
                                          actor=by)))
    path = baseline_path(site_file)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return baseline


@dataclass(frozen=True)
class ValidatedCheck:
    """The comparison ``run --validated`` makes, and the one line that says it."""

    config_hash: str
    software_hash: str
    baseline: dict[str, Any] | None
    changed_files: list[str]

    @property
    def ok(self) -> bool:
        return (
            self.baseline is not None
            and self.baseline["config_hash"] == self.config_hash
            and self.baseline["software_hash"] == self.software_hash
        )

    def message(self, site_file: Path) -> str:
        if self.baseline is None:
            return (f"refusing a validated start: no approved baseline for {site_file} "
                    f"(config hash {self.config_hash[:16]}, software hash {self.software_hash[:16]}); "
                    "qualify the site and record one with `cgt-gateway qualify baseline`")
        parts = []
        for what, now, approved in (("config", self.config_hash, self.baseline["config_hash"]),
                                    ("software", self.software_hash, self.baseline["software_hash"])):
            mark = "matches" if now == approved else "DIFFERS from"
            parts.append(f"{what} hash {now[:16]} {mark} the approved {approved[:16]}")
        changed = f" (changed: {', '.join(self.changed_files[:5])}{'…' if len(self.changed_files) > 5 else ''})"
        if self.ok:
            return f"validated start: {'; '.join(parts)}"
        return (f"refusing a validated start of {site_file}: {'; '.join(parts)}"
                + (changed if self.changed_files else "")
                + "; put back the approved version, or re-qualify and record a new baseline with "
                "`cgt-gateway qualify baseline`")

    def detail(self) -> dict[str, Any]:
        return {
            "config_hash": self.config_hash,
            "software_hash": self.software_hash,
            "approved_config_hash": None if self.baseline is None else self.baseline["config_hash"],
            "approved_software_hash": None if self.baseline is None else self.baseline["software_hash"],
            "approved_by": None if self.baseline is None else self.baseline.get("approved_by"),
            "changed_files": self.changed_files,
        }


def check_validated(site_file: Path, loaded: LoadedSite | None = None) -> ValidatedCheck:
    """Compare the site file and the installed software with the approved baseline."""
    loaded = loaded or load_without_sims(site_file)
    software = software_manifest()
    baseline = read_baseline(site_file)
    changed: list[str] = []
    if baseline is not None and isinstance(baseline.get("files"), dict):
        old, new = baseline["files"], software["files"]
        changed = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    return ValidatedCheck(loaded.config_hash, software["manifest_hash"], baseline, changed)


def enforce_validated(site_file: Path) -> ValidatedCheck:
    """Audit the validated start, or audit the refusal and raise :class:`NotValidated` with the one line.

    Blocking, with its own event loop for the journal: call it before the gateway's loop starts.
    """
    loaded = load_without_sims(site_file)
    check = check_validated(site_file, loaded)
    message = check.message(site_file)
    action = "qualification.validated_start" if check.ok else "qualification.refused"
    asyncio.run(_audit(loaded, AuditEntry(action, str(site_file.resolve()), message, check.detail())))
    if not check.ok:
        raise NotValidated(message)
    return check


async def _audit(loaded: LoadedSite, entry: AuditEntry) -> None:
    journal = loaded.site.journal
    try:
        journal.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot create the journal's folder {journal.path.parent}: {exc.strerror}") from exc
    try:
        async with Journal.open(journal.path, gateway_id=loaded.site.gateway.id,
                                synchronous=journal.synchronous) as writer:
            await writer.audit(entry)
    except JournalError as exc:
        if "locked" in str(exc).lower():
            raise JournalError(f"{journal.path}: the journal is locked: is the gateway running? stop it first "
                               f"({exc})") from exc
        raise


def _refuse_if_running(loaded: LoadedSite) -> None:
    """A gateway serving its API on this site's port is running: a baseline is recorded with it stopped."""
    api = loaded.site.api
    if api is None:
        return
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    try:
        with socket.create_connection((host, api.port), timeout=0.5):
            pass
    except OSError:
        return
    raise GatewayError(f"the gateway of {loaded.path} seems to be running (its API answers on {api.listen}); "
                       "stop it before recording a baseline")
