"""One IQ check as it is built (an :class:`~gateway.qualify.evidence.Item` once its verdict is given), and
the table of the site checks: their ids, titles, requirements and what each expects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.qualify.evidence import Item

CERT_WARN_DAYS = 30


@dataclass
class Check:
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


SITE_CHECKS: list[tuple[str, str, list[str], str]] = [
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
_SITE = {c[0]: c for c in SITE_CHECKS}


def site_check(item_id: str) -> Check:
    return Check(*_SITE[item_id])
