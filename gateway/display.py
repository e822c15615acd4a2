"""How records look in a terminal: one aligned line each, alarms and bad quality easy to spot."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import orjson

from gateway.records import Kind, ProcessRecord, RecordDraft

_RED, _YELLOW, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[1m", "\033[0m"


def format_value(value: object, unit: str | None) -> str:
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".").replace(",", " ")
    elif value is None:
        text = "—"
    else:
        text = str(value)
    return f"{text} {unit}" if unit and value is not None else text


def format_record(record: RecordDraft, *, color: bool = False) -> str:
    """``seq  time  equipment  parameter  value unit  quality  [detail]``."""
    seq = f"#{record.seq:<6}" if isinstance(record, ProcessRecord) else "draft  "
    when = (record.source_time or record.gateway_time).strftime("%H:%M:%S")
    line = (
        f"{seq} {when}  {record.equipment_id:<10} {record.parameter:<32} "
        f"{format_value(record.value, record.unit):>18}  {record.quality}"
    )
    if record.detail and (record.kind in (Kind.EVENT, Kind.ALARM) or not record.quality.is_good):
        line += f"  {record.detail}"
    if not color:
        return line
    if record.kind is Kind.ALARM and record.value != "normal":
        return f"{_RED}{_BOLD}{line}{_RESET}"
    if record.quality.severity == "bad" or record.kind is Kind.EVENT:
        return f"{_YELLOW}{line}{_RESET}"
    return line


class RecordPrinter:
    """Prints committed records as they arrive (``run --show``), as text or JSON lines."""

    def __init__(self, out: TextIO = sys.stdout, *, as_json: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.color = out.isatty() and not as_json

    def __call__(self, records: Sequence[RecordDraft]) -> None:
        for record in records:
            if self.as_json:
                self.out.write(orjson.dumps(record.model_dump(mode="json")).decode() + "\n")
            else:
                self.out.write(format_record(record, color=self.color) + "\n")
        self.out.flush()
