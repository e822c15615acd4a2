"""IQ-01 to IQ-04, what is installed: the Python, the package versions, the code manifest and the site
configuration, each against the approved baseline when one exists."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gateway.config import LoadedSite
from gateway.errors import ConfigError, GatewayError
from gateway.qualify.baseline import baseline_path, load_without_sims, read_baseline
from gateway.qualify.evidence import Item
from gateway.qualify.iq.item import Check
from gateway.runtime import check_site

MIN_PYTHON = (3, 11)


def approved_baseline(site_file: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return read_baseline(site_file), None
    except GatewayError as exc:
        return None, str(exc)


def python_version() -> Item:
    c = Check("IQ-01", "Python version", ["GAMP 5 Cat. 1", "Annex 11 §4.3"],
              f"CPython ≥ {'.'.join(map(str, MIN_PYTHON))}")
    c.step(f"read sys.version_info ({sys.executable})")
    version = ".".join(map(str, sys.version_info[:3]))
    return c.done(sys.version_info[:2] >= MIN_PYTHON, f"Python {version} ({sys.implementation.name})")


def package_versions(software: dict[str, Any]) -> Item:
    c = Check("IQ-02", "Package versions match the installed distribution's requirements",
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


def code_manifest(software: dict[str, Any], baseline: dict[str, Any] | None, problem: str | None,
                  site_file: Path) -> Item:
    c = Check("IQ-03", "Installed code manifest", ["21 CFR 11.10(a)", "21 CFR 11.10(k)", "Annex 11 §10"],
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


def site_config(site_file: Path, baseline: dict[str, Any] | None,
                problem: str | None) -> tuple[LoadedSite | None, Item]:
    c = Check("IQ-04", "Site configuration valid and under change control",
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
