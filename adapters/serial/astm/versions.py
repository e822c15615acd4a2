"""Versions of each instrument result: a correction (R.9 = C) is linked to the version it replaces and a
result sent again is recognised. Pure: no I/O, no clock.

A result is identified by its **key**: the equipment, the sample (by the profile: specimen and bottle id)
and the test (R.3). R.2, the result's sequence number, is positional within one message (a message
carrying only the corrected result would number it 1), so it is not part of the key. Versions of one key
are told apart by the R record's text: the same text is the same version sent again.

The memory is per gateway process and bounded (the least recently seen keys are forgotten first), so a
correction arriving after a restart is recorded as correcting an unknown version; the key still links it
to every earlier version in the journal.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from adapters.serial.astm.message import Record
from gateway.records import UNKNOWN_ORIGINAL

#: Keys remembered (each holds one R record, a few hundred bytes).
REMEMBERED = 10_000


def result_key(equipment_id: str, sample: Sequence[str], test: str) -> str | None:
    """``equipment/specimen/bottle/test``, each part percent-encoded; None when the sample names nothing."""
    if not any(sample):
        return None
    return "/".join(quote(part, safe="") for part in (equipment_id, *sample, test))


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a result as this gateway received it."""

    record: Record
    #: sha256 of the record's frames: the ``raw_sha256`` its records carry.
    raw_sha256: str
    received: datetime
    #: What this version corrected (a correction), else None.
    corrects: str | None


@dataclass(frozen=True, slots=True)
class Seen:
    """What an arriving R record is against the versions already received."""

    kind: Literal["new", "repeat", "correction"]
    #: ``corrects`` for its records: the replaced version's raw_sha256, ``unknown``, or None.
    corrects: str | None
    #: The latest version before this one, if any was received.
    previous: Version | None


class ResultVersions:
    """The latest version of each result key, in memory; one per equipment entry, not thread-safe."""

    def __init__(self, capacity: int = REMEMBERED) -> None:
        self.capacity = capacity
        self._latest: OrderedDict[str, Version] = OrderedDict()

    def observe(self, key: str | None, record: Record, correction: bool, at: datetime) -> Seen:
        """Judge one R record and remember it as the key's latest version (a repeat changes nothing)."""
        if key is None:
            return Seen("correction", UNKNOWN_ORIGINAL, None) if correction else Seen("new", None, None)
        latest = self._latest.get(key)
        if latest is not None:
            self._latest.move_to_end(key)
            if latest.record.text == record.text:
                return Seen("repeat", latest.corrects, latest)
        corrects = (latest.raw_sha256 if latest is not None else UNKNOWN_ORIGINAL) if correction else None
        digest = hashlib.sha256(b"".join(record.frames)).hexdigest()
        self._latest[key] = Version(record, digest, at, corrects)
        if len(self._latest) > self.capacity:
            self._latest.popitem(last=False)
        return Seen("correction" if correction else "new", corrects, latest)

    def __len__(self) -> int:
        return len(self._latest)
