"""File-drop sink: rotated JSONL or CSV files for an MES that collects files from a folder."""

from gateway.sinks.base import SinkType
from gateway.sinks.file.config import FileSinkConfig
from gateway.sinks.file.sink import FileSink

plugin = SinkType("file", FileSinkConfig, FileSink)

__all__ = ["FileSink", "FileSinkConfig", "plugin"]
