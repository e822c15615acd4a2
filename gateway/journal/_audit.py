"""The gateway's audit trail inside the journal: who did what, when and why, hash-chained.

Entries are written in the same transaction as the change they describe (a dead-lettered record and
its sink's cursor move, a prune), so the trail never says something happened that did not, nor misses
what did. Each entry's ``payload`` is canonical JSON (sorted keys, like a record's) of::

    {"id", "time", "actor", "action", "subject", "reason", "detail", "prev_hash"}

and ``hash = sha256(payload)``; ``prev_hash`` is the previous entry's hash (64 zeros for the first).
Blocking: runs on the writer's thread inside its transaction, or in verify.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.journal._chain import GENESIS_HASH, payload_hash
from gateway.records import utc_now

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z

#: What the gateway itself does is recorded under this actor; people are named by the operator API.
GATEWAY_ACTOR = "gateway"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing that happened. ``subject`` says to what (``sink:mes seq 42``), ``reason`` why."""

    action: str
    subject: str
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    actor: str = GATEWAY_ACTOR


def append_entries(conn: sqlite3.Connection, entries: Iterable[AuditEntry]) -> int:
    """Chain and insert entries after the trail's head, inside the caller's transaction; return how many."""
    row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    last_id, prev = (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
    now = utc_now()
    rows = []
    for entry in entries:
        last_id += 1
        body = {
            "id": last_id,
            "time": now,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "reason": entry.reason,
            "detail": entry.detail,
            "prev_hash": prev,
        }
        payload = orjson.dumps(body, option=_OPTIONS)
        prev = payload_hash(payload)
        rows.append((last_id, orjson.dumps(now, option=_OPTIONS)[1:-1].decode(), entry.action, payload, prev))
    conn.executemany("INSERT INTO audit (id, time, action, payload, hash) VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def read_entries(conn: sqlite3.Connection, since_id: int = 0, limit: int = -1) -> list[dict[str, Any]]:
    """Entries after ``since_id`` as dicts (with ``hash``), oldest first."""
    return [
        orjson.loads(payload) | {"hash": hash_}
        for payload, hash_ in conn.execute(
            "SELECT payload, hash FROM audit WHERE id > ? ORDER BY id LIMIT ?", (since_id, limit)
        )
    ]


def check_trail(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Walk the trail: ``(entries checked, None)`` when intact, else ``(good entries, one-line reason)``."""
    expected, prev = 1, GENESIS_HASH
    for entry_id, payload, hash_ in conn.execute("SELECT id, payload, hash FROM audit ORDER BY id"):
        if entry_id != expected:
            return expected - 1, f"audit entry {expected} missing ({expected - 1} is followed by {entry_id})"
        if isinstance(payload, str):
            payload = payload.encode()
        if payload_hash(payload) != hash_:
            return expected - 1, f"audit entry {entry_id}: hash does not match its content (entry edited)"
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return expected - 1, f"audit entry {entry_id}: payload is not JSON"
        if body.get("id") != entry_id or body.get("prev_hash") != prev:
            return expected - 1, f"audit entry {entry_id}: not chained to entry {entry_id - 1} (altered or reordered)"
        expected, prev = entry_id + 1, hash_
    return expected - 1, None
