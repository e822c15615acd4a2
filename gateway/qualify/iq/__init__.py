"""Installation qualification: is this machine set up the way the site file and the approved baseline say?

Each check is an :class:`~gateway.qualify.evidence.Item` with an id, what was expected, what was observed
and a verdict. A check that passes but deserves a reviewer's eye (a journal on tmpfs, a certificate close
to expiry) carries a warning. Nothing here changes the installation except a probe file (and a probe
SQLite file) created and removed in the journal's folder, which is created if it does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import YamlDocument
from gateway.qualify.evidence import Evidence, Item, environment, software_manifest
from gateway.qualify.iq.host import certificates, clock, listen_ports, serial_ports
from gateway.qualify.iq.install import approved_baseline, code_manifest, package_versions, python_version, site_config
from gateway.qualify.iq.item import SITE_CHECKS, Check
from gateway.qualify.iq.storage import free_disk, journal_folder, journal_storage

__all__ = ["Progress", "run_iq"]

_NOT_CHECKED = "not checked: the site file does not load"

Progress = Callable[[Item], None]


def run_iq(site_file: Path, *, progress: Progress | None = None) -> Evidence:
    """Run every IQ check against ``site_file`` and the installed software; return the evidence."""
    started = datetime.now(UTC)
    items: list[Item] = []

    def add(item: Item) -> None:
        items.append(item)
        if progress is not None:
            progress(item)

    software = software_manifest()
    baseline, baseline_problem = approved_baseline(site_file)
    add(python_version())
    add(package_versions(software))
    add(code_manifest(software, baseline, baseline_problem, site_file))
    loaded, config_item = site_config(site_file, baseline, baseline_problem)
    add(config_item)
    notes: list[str] = []
    if loaded is None:
        for check in SITE_CHECKS:
            c = Check(*check)
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
        add(journal_folder(loaded))
        add(journal_storage(loaded))
        add(free_disk(loaded))
        add(clock())
        add(listen_ports(loaded, raw))
        add(certificates(loaded))
        add(serial_ports(loaded, raw))
    config_hash = loaded.config_hash if loaded is not None else ""
    return Evidence(
        kind="IQ", title=f"Installation qualification of {site_file.name}", config_path=str(site_file.resolve()),
        config_hash=config_hash, started=started, ended=datetime.now(UTC), items=items,
        environment=environment(), software=software, notes=notes,
    )
