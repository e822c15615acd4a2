"""File-drop sink: rotated JSONL or CSV files for an MES that collects files from a folder."""

from gateway.sinks.base import SinkContext
from gateway.sinks.file.config import FileSinkConfig
from gateway.sinks.file.sink import FileSink


class _Plugin:
    type = "file"
    config_model = FileSinkConfig

    def create(self, config: FileSinkConfig, context: SinkContext) -> FileSink:
        return FileSink(config, context)


plugin = _Plugin()

__all__ = ["FileSink", "FileSinkConfig", "plugin"]
