"""Settings of the file-drop sink."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gateway.config import resolve_path
from gateway.sinks.base import BatchingConfig, SinkConfig


class FileSinkConfig(SinkConfig):
    type: Literal["file"] = "file"
    folder: Path = Field(description="where the files are dropped, relative to this file; created if missing")
    format: Literal["jsonl", "csv"] = Field(default="jsonl", description="JSON lines (as exported) or CSV")
    batch: BatchingConfig = Field(
        default=BatchingConfig(max_records=10_000, max_age_s=60.0),
        description="one file per batch: rotate at this many records or this age",
    )

    _resolve = field_validator("folder")(resolve_path)
