"""How far each sink has got, read from the journal file alone (no running gateway needed).

For ``cgt-gateway sinks`` and monitoring scripts: per sink its durable cursor, the backlog (committed
records it has not settled), the age of the oldest of them, and its dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.journal import JournalReader
from gateway.records import utc_now
from gateway.sinks.forwarder import cursor_name


@dataclass(frozen=True, slots=True)
class SinkBacklog:
    name: str
    cursor: int
    last_seq: int
    backlog: int
    #: Seconds since the oldest unsettled record was committed (0 when none).
    backlog_age_s: float
    dead_letters: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def sink_backlogs(journal_path: Path, sink_names: Sequence[str]) -> list[SinkBacklog]:
    """One entry per named sink, in the order given."""
    now = utc_now()
    out = []
    with JournalReader(journal_path) as reader:
        last = reader.last_seq()
        cursors = reader.cursors()
        dead = reader.dead_letters()
        for name in sink_names:
            cursor = cursors.get(cursor_name(name), 0)
            oldest = next(reader.read(cursor, limit=1), None) if cursor < last else None
            age = (now - oldest.gateway_time).total_seconds() if oldest is not None else 0.0
            out.append(SinkBacklog(
                name=name,
                cursor=cursor,
                last_seq=last,
                backlog=max(0, last - cursor),
                backlog_age_s=round(max(age, 0.0), 3),
                dead_letters=sum(1 for d in dead if d.sink == cursor_name(name)),
            ))
    return out
