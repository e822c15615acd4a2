"""The MES over HTTP(S): batches of committed records POSTed as JSON with an idempotency key.

The runtime finds :data:`plugin` through the ``cgt_gateway.sinks`` entry point ``http``; the wire
contract an MES implements is in README.md.
"""

from __future__ import annotations

from gateway.sinks.base import SinkType
from gateway.sinks.http.config import HttpSinkConfig
from gateway.sinks.http.sink import HttpSink

plugin = SinkType("http", HttpSinkConfig, HttpSink)

__all__ = ["HttpSink", "HttpSinkConfig", "plugin"]
