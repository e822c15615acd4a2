"""The MES over HTTP(S): batches of committed records POSTed as JSON with an idempotency key.

The runtime finds :data:`plugin` through the ``cgt_gateway.sinks`` entry point ``http``; the wire
contract an MES implements is in README.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.errors import ConfigError
from gateway.sinks.base import SinkContext
from gateway.sinks.http.config import HttpSinkConfig
from gateway.sinks.http.sink import HttpSink


class HttpSinkPlugin:
    """Stateless: everything a sink needs is in its config entry."""

    type: ClassVar[str] = "http"
    config_model: ClassVar[type[HttpSinkConfig]] = HttpSinkConfig

    def create(self, config: Any, context: SinkContext) -> HttpSink:
        """A new, unconnected sink."""
        if not isinstance(config, HttpSinkConfig):
            raise ConfigError(f"sink {getattr(config, 'name', '?')}: type {config.type!r} is not served by http")
        return HttpSink(config, context)


plugin = HttpSinkPlugin()

__all__ = ["HttpSink", "HttpSinkConfig", "HttpSinkPlugin", "plugin"]
