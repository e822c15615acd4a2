"""The ``opcua-server`` sink: an OPC UA server in the gateway with the latest value of every parameter.

Found through the ``cgt_gateway.sinks`` entry point ``opcua-server``; see README.md in this folder.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.sinks.base import SinkContext
from gateway.sinks.opcua_server.config import OpcUaServerSinkConfig
from gateway.sinks.opcua_server.sink import OpcUaServerSink


class OpcUaServerPlugin:
    """Stateless: each ``create`` is a new, stopped server."""

    type: ClassVar[str] = "opcua-server"
    config_model: ClassVar[type[OpcUaServerSinkConfig]] = OpcUaServerSinkConfig

    def create(self, config: Any, context: SinkContext) -> OpcUaServerSink:
        if not isinstance(config, OpcUaServerSinkConfig):
            raise TypeError(f"the opcua-server sink takes an OpcUaServerSinkConfig, not {type(config).__name__}")
        return OpcUaServerSink(config, context)


plugin = OpcUaServerPlugin()

__all__ = ["OpcUaServerPlugin", "OpcUaServerSink", "OpcUaServerSinkConfig", "plugin"]
