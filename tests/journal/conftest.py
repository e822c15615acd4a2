"""Fixtures for the journal tests: real SQLite files in tmp_path, drafts to append, tamper helpers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.records import Isa95Path, Kind, Quality, RecordDraft

MakeDraft = Callable[..., RecordDraft]
_EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_leaked_writer_threads() -> Iterator[None]:
    """A closed journal leaves no writer thread behind."""
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("journal-writer")]
    assert not left, f"journal writer threads still running: {left}"


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def make_draft() -> MakeDraft:
    """``make_draft(i, **overrides)``: a valid draft whose value is ``float(i)`` and time is unique."""

    def make(i: int = 0, **overrides: Any) -> RecordDraft:
        fields: dict[str, Any] = {
            "equipment_id": f"pc-{i % 3}",
            "equipment_class": "particle_counter",
            "isa95": Isa95Path(site="site-a", area="grade-b", unit="suite-3"),
            "parameter": "particles_0_5um",
            "source": f"modbus+tcp://127.0.0.1:5020/1/input/{30009 + i}",
            "kind": Kind.MEASUREMENT,
            "value": float(i),
            "unit": "/m3",
            "quality": Quality.GOOD,
            "gateway_time": _EPOCH + timedelta(milliseconds=i),
            "config_hash": "ab" * 32,
        }
        fields.update(overrides)
        return RecordDraft(**fields)

    return make


Tamper = Callable[..., None]
StoredRow = Callable[[Path, int], tuple[bytes, bytes | None, str]]


@pytest.fixture
def tamper() -> Tamper:
    """``tamper(path, sql | (sql, params), ...)``: change a journal behind the gateway's back."""

    def run(path: Path, *statements: tuple[str, tuple[Any, ...]] | str) -> None:
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            for statement in statements:
                sql, params = (statement, ()) if isinstance(statement, str) else statement
                db.execute(sql, params)

    return run


@pytest.fixture
def stored_row() -> StoredRow:
    """``stored_row(path, seq)``: ``(payload, raw, hash)`` of one row, read directly."""

    def read(path: Path, seq: int) -> tuple[bytes, bytes | None, str]:
        with closing(sqlite3.connect(path)) as db:
            row = db.execute("SELECT payload, raw, hash FROM records WHERE seq = ?", (seq,)).fetchone()
        assert row is not None, f"no row {seq}"
        return row

    return read
