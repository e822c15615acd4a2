"""Drop committed records into a folder as files for an MES that collects files.

One file per batch, named ``<gateway_id>-<first seq>-<last seq>.jsonl`` (or ``.csv``), seqs
zero-padded to 12 digits so names sort in seq order. A file appears whole or not at all: it is
written as ``.<name>.part``, synced, renamed, and the folder synced. If the gateway stops between
the rename and the cursor move, the next start finds the file and does not write those seqs again,
so a collector sees each record in exactly one file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import orjson

from gateway.journal import csv_columns, csv_row
from gateway.sinks.base import Outcome, SinkBatch, SinkContext, SinkError
from gateway.sinks.file.config import FileSinkConfig

_HIDDEN = ("delivery",)


class FileSink:
    def __init__(self, config: FileSinkConfig, context: SinkContext) -> None:
        self.name = config.name
        self.config = config
        self.gateway_id = context.gateway_id
        self._pattern = re.compile(rf"^{re.escape(self.gateway_id)}-(\d{{12}})-(\d{{12}})\.{config.format}$")
        #: The last seq already in a finished file (from this run or an earlier one).
        self.written_through = 0

    async def connect(self) -> None:
        await asyncio.to_thread(self._scan)

    async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None:
        fresh = [r for r in batch.records if r["seq"] > self.written_through]
        if fresh:
            await asyncio.to_thread(self._drop, fresh)
        return None

    async def close(self) -> None:
        return None

    def _scan(self) -> None:
        folder = self.config.folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            names = os.listdir(folder)
        except OSError as exc:
            raise SinkError(f"file sink {self.name}: cannot use folder {folder}: {exc.strerror}") from exc
        for name in names:
            match = self._pattern.match(name)
            if match:
                self.written_through = max(self.written_through, int(match.group(2)))
            elif name.startswith(".") and name.endswith(".part"):
                (folder / name).unlink(missing_ok=True)  # a file cut off by a crash: rewritten from the journal

    def _drop(self, records: list[dict[str, object]]) -> None:
        first, last = records[0]["seq"], records[-1]["seq"]
        final = self.config.folder / f"{self.gateway_id}-{first:012d}-{last:012d}.{self.config.format}"
        part = final.with_name(f".{final.name}.part")
        data = self._encode(records)
        try:
            with open(part, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise SinkError(f"file sink {self.name}: cannot write {final.name}: {exc.strerror}") from exc
        self.written_through = int(last)  # type: ignore[arg-type]

    def _encode(self, records: list[dict[str, object]]) -> bytes:
        if self.config.format == "jsonl":
            option = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
            lines = (orjson.dumps({k: v for k, v in r.items() if k not in _HIDDEN}, option=option) for r in records)
            return b"".join(lines)
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        columns = csv_columns()
        writer.writerow(columns)
        writer.writerows(csv_row(r, columns) for r in records)
        return text.getvalue().encode()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
