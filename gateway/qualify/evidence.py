"""Qualification evidence: what was checked, against what, with what result, as JSON and as a signable HTML page.

IQ and OQ both write through here so a QA reviewer sees one format: what was qualified (config path and
hash, software version and manifest hash, environment), the verdict, a requirement → test traceability
matrix, every item with expected / observed / verdict / steps / attachments, and a signature block. The
HTML is one self-contained file (inline CSS and SVG, nothing fetched) that prints cleanly; the JSON holds
everything the HTML shows, for machines and for archiving.
"""

from __future__ import annotations

import getpass
import hashlib
import html
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

import gateway
from gateway.qualify.svg import svg_line_plot

DISTRIBUTION = "cgt-gateway"
#: The folders whose files make up "the installed gateway" for the code manifest.
MANIFEST_FOLDERS = ("gateway", "adapters", "device_sims", "config")
MANIFEST_SUFFIXES = (".py", ".yaml", ".yml")


@dataclass
class Item:
    """One IQ check or one OQ test case, with its evidence."""

    id: str  # "IQ-03", "OQ-12"
    title: str
    requirement_ids: list[str]  # URS/FS ids or Part 11 / Annex 11 clauses it covers
    expected: str
    observed: str
    passed: bool
    started: datetime
    ended: datetime
    steps: list[str] = field(default_factory=list)  # what was done, in order, with times
    attachments: dict[str, str] = field(default_factory=dict)  # name -> inline SVG (plots) or text
    #: A passed check a reviewer should still look at (a certificate near expiry, a tmpfs journal).
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass
class Evidence:
    """One qualification run: the items and everything needed to say what they were run against."""

    kind: Literal["IQ", "OQ"]
    title: str
    config_path: str
    config_hash: str
    started: datetime
    ended: datetime
    items: list[Item]
    environment: dict[str, Any]  # from environment()
    software: dict[str, Any]  # from software_manifest(): version, package versions, code hash
    notes: list[str] = field(default_factory=list)  # e.g. "a qualification rig: the site starts simulators"

    @property
    def passed(self) -> bool:
        return bool(self.items) and all(item.passed for item in self.items)

    @property
    def counts(self) -> dict[str, int]:
        failed = sum(not i.passed for i in self.items)
        return {"total": len(self.items), "passed": len(self.items) - failed, "failed": failed,
                "warnings": sum(bool(i.warnings) for i in self.items)}

    def traceability(self) -> dict[str, list[str]]:
        """Requirement id → the item ids that cover it, requirements sorted."""
        matrix: dict[str, list[str]] = {}
        for item in self.items:
            for req in item.requirement_ids:
                matrix.setdefault(req, []).append(item.id)
        return dict(sorted(matrix.items()))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["verdict"] = "PASS" if self.passed else "FAIL"
        data["counts"] = self.counts
        data["traceability"] = self.traceability()
        for raw, item in zip(data["items"], self.items, strict=True):
            raw["verdict"] = item.verdict
        data["signatures"] = [{"role": role, "name": None, "signature": None, "date": None} for role in _SIGNERS]
        return data


# --- what the run happened on -------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """The machine and clock the evidence was produced on."""
    now = datetime.now(UTC)
    local = datetime.now().astimezone()
    offset = local.utcoffset()
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "user": _user(),
        "timezone": local.tzname() or "unknown",
        "utc_offset_s": int(offset.total_seconds()) if offset is not None else None,
        "clock_utc": now.isoformat(),
        "ntp_synchronized": ntp_synchronized(),
    }


def ntp_synchronized() -> bool | None:
    """What the OS says about clock sync (``timedatectl``), or None when it does not say."""
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip().lower()
    if out.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def installed_root() -> Path:
    """The folder holding the installed ``gateway`` package (and its siblings)."""
    return Path(gateway.__file__).resolve().parent.parent


def code_files(root: Path | None = None) -> dict[str, str]:
    """sha256 of every .py/.yaml file of the gateway's folders, keyed by path relative to ``root``."""
    root = root or installed_root()
    hashes: dict[str, str] = {}
    for folder in MANIFEST_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in MANIFEST_SUFFIXES or "__pycache__" in path.parts or not path.is_file():
                continue
            hashes[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(hashes.items()))


def manifest_hash(files: Mapping[str, str]) -> str:
    """One hash over the per-file hashes, in sorted path order: changes when any file changes, appears or goes."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\0{files[path]}\n".encode())
    return digest.hexdigest()


def dependency_versions() -> list[dict[str, Any]]:
    """Each runtime requirement of the installed distribution: what is required, what is installed, and ok."""
    try:
        requires = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    rows = []
    for spec in requires:
        requirement, _, marker = spec.partition(";")
        if "extra" in marker:
            continue
        name = re.split(r"[\s<>=!~\[(]", requirement.strip(), maxsplit=1)[0]
        specifier = requirement.strip()[len(name):].strip()
        try:
            installed: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        rows.append({"name": name, "required": specifier or "any", "installed": installed,
                     "ok": _satisfies(installed, specifier)})
    return rows


def _satisfies(installed: str | None, specifier: str) -> bool | None:
    """True/False when it can be decided; None when no version parser is available."""
    if installed is None:
        return False
    if not specifier:
        return True
    try:
        from packaging.specifiers import SpecifierSet  # optional: present wherever pip is
    except ImportError:
        return None
    return SpecifierSet(specifier).contains(installed, prereleases=True)


def software_manifest(root: Path | None = None) -> dict[str, Any]:
    """The software under qualification: version, dependency versions, per-file hashes and one manifest hash."""
    files = code_files(root)
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = gateway.__version__
    return {
        "name": DISTRIBUTION,
        "version": version,
        "dependencies": dependency_versions(),
        "files": files,
        "file_count": len(files),
        "manifest_hash": manifest_hash(files),
    }


# --- writing ------------------------------------------------------------------------------------------


def write_evidence(evidence: Evidence, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<kind>-<UTC time>.json`` and ``.html`` into ``out_dir`` (created); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = evidence.ended.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{evidence.kind.lower()}-{stamp}"
    n = 1
    while (out_dir / f"{stem}.json").exists() or (out_dir / f"{stem}.html").exists():
        n += 1
        stem = f"{evidence.kind.lower()}-{stamp}-{n}"
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_bytes(orjson.dumps(evidence.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z) + b"\n")
    html_path.write_text(render_html(evidence), encoding="utf-8")
    return json_path, html_path


_SIGNERS = ("Prepared by", "Reviewed by", "Approved by")

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#111;margin:2em auto;max-width:60em;
 line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #333;padding-bottom:.2em;margin-top:1.6em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#eee}code,.mono{font-family:Menlo,Consolas,monospace;font-size:.88em;word-break:break-all}
.verdict{font-size:2.2em;font-weight:bold;padding:.3em .8em;display:inline-block;border:4px solid;margin:.3em 0}
.PASS{color:#0a6b1f;border-color:#0a6b1f}.FAIL{color:#b00020;border-color:#b00020}
td.PASS,td.FAIL{font-weight:bold}.warn{color:#8a5a00}
.item{border:1px solid #bbb;padding:.6em 1em;margin:1em 0;page-break-inside:avoid}
.item.failed{border:2px solid #b00020}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;font-size:.85em}
.sig td{height:3em}.note{background:#fff7d6;padding:.4em .8em;border-left:4px solid #d9a400}
@media print{body{margin:0;max-width:none}a{color:#000}.item{page-break-inside:avoid}}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_html(evidence: Evidence) -> str:
    """The evidence as one self-contained, printable HTML page."""
    verdict = "PASS" if evidence.passed else "FAIL"
    counts = evidence.counts
    sw = evidence.software
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(evidence.kind)} evidence: {_e(evidence.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(evidence.kind)} evidence: {_e(evidence.title)}</h1>",
        f"<p>Run from {_e(_time(evidence.started))} to {_e(_time(evidence.ended))} (UTC).</p>",
        "<h2>What was qualified</h2>",
        _kv_table([
            ("Site configuration", f"<code>{_e(evidence.config_path)}</code>"),
            ("Configuration hash (sha256)", f"<code>{_e(evidence.config_hash)}</code>"),
            ("Software", f"{_e(sw.get('name', DISTRIBUTION))} {_e(sw.get('version', '?'))}"),
            ("Software manifest hash (sha256)",
             f"<code>{_e(sw.get('manifest_hash', ''))}</code> over {_e(sw.get('file_count', '?'))} files"),
        ]),
    ]
    for note in evidence.notes:
        out.append(f'<p class="note">{_e(note)}</p>')
    out += [
        "<h3>Environment</h3>",
        _kv_table([(k, f"<code>{_e(_show(v))}</code>") for k, v in evidence.environment.items()]),
        "<h2>Summary</h2>",
        f'<div class="verdict {verdict}" id="verdict">{verdict}</div>',
        f"<p>{counts['total']} items: <b>{counts['passed']} passed</b>, <b>{counts['failed']} failed</b>"
        + (f", {counts['warnings']} with warnings" if counts["warnings"] else "") + ".</p>",
        "<table><tr><th>Id</th><th>Title</th><th>Verdict</th></tr>",
    ]
    for item in evidence.items:
        out.append(f'<tr><td><a href="#{_e(item.id)}">{_e(item.id)}</a></td><td>{_e(item.title)}'
                   + ("".join(f' <span class="warn">(warning: {_e(w)})</span>' for w in item.warnings))
                   + f'</td><td class="{item.verdict}">{item.verdict}</td></tr>')
    out.append("</table>")
    out += ["<h2>Traceability: requirement → test</h2>",
            '<table id="traceability"><tr><th>Requirement</th><th>Covered by</th><th>Verdict</th></tr>']
    by_id = {item.id: item for item in evidence.items}
    for req, ids in evidence.traceability().items():
        ok = all(by_id[i].passed for i in ids)
        out.append(f'<tr class="trace"><td>{_e(req)}</td><td>{_e(", ".join(ids))}</td>'
                   f'<td class="{"PASS" if ok else "FAIL"}">{"PASS" if ok else "FAIL"}</td></tr>')
    out.append("</table>")
    out.append("<h2>Items</h2>")
    for item in evidence.items:
        out.append(_item_html(item))
    deps = sw.get("dependencies") or []
    if deps:
        out += ["<h2>Dependencies</h2>",
                "<table><tr><th>Package</th><th>Required</th><th>Installed</th><th>Matches</th></tr>"]
        for d in deps:
            ok = {True: "yes", False: "NO", None: "not checked"}[d.get("ok")]
            out.append(f"<tr><td>{_e(d['name'])}</td><td>{_e(d['required'])}</td>"
                       f"<td>{_e(d['installed'] or 'missing')}</td><td>{ok}</td></tr>")
        out.append("</table>")
    out += ["<h2>Signatures</h2>",
            "<p>By signing, the signer confirms the meaning stated: prepared (executed and recorded), reviewed "
            "(evidence checked against the protocol), approved (accepted for release).</p>",
            '<table class="sig"><tr><th style="width:18%">Role</th><th>Name</th><th>Signature</th>'
            '<th style="width:22%">Date (UTC)</th></tr>']
    for role in _SIGNERS:
        out.append(f"<tr><td>{role}</td><td></td><td></td><td></td></tr>")
    out += ["</table>",
            f"<p class=\"mono\">Software manifest {_e(sw.get('manifest_hash', ''))} · "
            f"configuration {_e(evidence.config_hash)}</p>",
            "</body></html>", ""]
    return "\n".join(out)


def _item_html(item: Item) -> str:
    cls = "item" if item.passed else "item failed"
    parts = [
        f'<div class="{cls}" id="{_e(item.id)}">',
        f'<h3>{_e(item.id)}: {_e(item.title)} — <span class="{item.verdict}">{item.verdict}</span></h3>',
        _kv_table([
            ("Requirements", _e(", ".join(item.requirement_ids)) or "—"),
            ("Expected", _e(item.expected)),
            ("Observed", _e(item.observed)),
            ("Verdict", f'<span class="{item.verdict}">{item.verdict}</span>'),
            ("Time (UTC)", f"{_e(_time(item.started))} – {_e(_time(item.ended))}"),
        ]),
    ]
    for warning in item.warnings:
        parts.append(f'<p class="warn">Warning: {_e(warning)}</p>')
    if item.steps:
        parts.append("<b>Steps</b><ol>" + "".join(f"<li>{_e(s)}</li>" for s in item.steps) + "</ol>")
    for name, content in item.attachments.items():
        parts.append(f"<b>{_e(name)}</b>")
        if content.lstrip().startswith("<svg"):
            parts.append(f'<div class="plot">{content}</div>')  # produced by svg_line_plot: trusted markup
        else:
            parts.append(f"<pre>{_e(content)}</pre>")
    parts.append("</div>")
    return "\n".join(parts)


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th style="width:30%">{_e(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


#: The report style and helpers, public for other signable reports (the per-lot evidence pack) to look the same.
REPORT_CSS = _CSS
html_escape = _e
kv_table = _kv_table
utc_text = _time


def _show(value: object) -> str:
    if value is None:
        return "not reported"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def now_utc() -> datetime:
    """The evidence clock: timezone-aware UTC."""
    return datetime.now(UTC)


__all__ = [
    "REPORT_CSS", "Evidence", "Item", "code_files", "dependency_versions", "environment", "html_escape",
    "installed_root", "kv_table", "manifest_hash", "now_utc", "ntp_synchronized", "render_html", "software_manifest",
    "svg_line_plot", "utc_text", "write_evidence",
]
