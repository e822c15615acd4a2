"""The journal: the gateway's durable, append-only, hash-chained record of truth (one SQLite file).

A record is *committed* when the transaction holding it is durable; only then does
:meth:`Journal.append` return, and only then may a device be acknowledged. Each gateway's records
are numbered ``seq`` 1, 2, 3… without gaps, so ``(gateway_id, seq)`` is the idempotency key
downstream, and each record's ``hash`` covers its content, its raw wire bytes and the previous
record's hash (the canonical encoding is defined in :mod:`gateway.journal._chain`).

    async with Journal.open(path, gateway_id="suite-3") as journal:   # one writer per file
        committed = await journal.append([(draft, raw_bytes), ...])   # durable on return
        committed.seqs                                                 # range of seqs assigned
        await journal.set_cursor("mes", committed.last_seq)            # one cursor per sink

    with JournalReader(path) as reader:                                # any thread or process
        for record in reader.read(since_seq=cursor, limit=500): ...

    verify(path).raise_for_status()                                    # no gateway needed
    backup(path, "copy.sqlite").ok                                     # online, while the writer runs
    restore(path, "copy.sqlite", actor="j.doe", reason="...")          # only with the gateway stopped
    export_jsonl(path, sys.stdout.buffer); export_csv(path, open(f, "w", newline=""))
"""

from gateway.journal._audit import AuditEntry
from gateway.journal._backup import BackupReport, RestoreReport, backup, restore
from gateway.journal._chain import GENESIS_HASH, record_hash
from gateway.journal._committed import Committed, JournalStats
from gateway.journal._export import JournalSource, csv_columns, csv_row, export_csv, export_jsonl
from gateway.journal._lock import lock_path
from gateway.journal._reader import DeadLetter, JournalReader, Resolution
from gateway.journal._schema import JOURNAL_SCHEMA_VERSION, Synchronous
from gateway.journal._verify import VerifyReport, verify
from gateway.journal._writer import Journal

__all__ = [
    "GENESIS_HASH",
    "JOURNAL_SCHEMA_VERSION",
    "AuditEntry",
    "BackupReport",
    "Committed",
    "DeadLetter",
    "Journal",
    "JournalReader",
    "JournalSource",
    "JournalStats",
    "Resolution",
    "RestoreReport",
    "Synchronous",
    "VerifyReport",
    "backup",
    "csv_columns",
    "csv_row",
    "export_csv",
    "export_jsonl",
    "lock_path",
    "record_hash",
    "restore",
    "verify",
]
