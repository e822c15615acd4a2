"""Northbound sinks: each reads committed records through its own durable journal cursor.

The contract is in :mod:`gateway.sinks.base`; :mod:`gateway.sinks.forwarder` runs one sink. Each
built-in sink is a package of its own (``http``, ``mqtt``, ``file``, ``opcua_server``) with its
config model, README and sample config, registered under the ``cgt_gateway.sinks`` entry points.
"""

from gateway.sinks.base import (
    BatchingConfig,
    Outcome,
    RetryConfig,
    Sink,
    SinkBatch,
    SinkConfig,
    SinkContext,
    SinkError,
    SinkPlugin,
    SinkType,
    Verdict,
    WireRecord,
)

__all__ = [
    "BatchingConfig",
    "Outcome",
    "RetryConfig",
    "Sink",
    "SinkBatch",
    "SinkConfig",
    "SinkContext",
    "SinkError",
    "SinkPlugin",
    "SinkType",
    "Verdict",
    "WireRecord",
]
