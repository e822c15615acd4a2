"""The ``opcua-server`` sink: an OPC UA server in the gateway with the latest value of every parameter.

Found through the ``cgt_gateway.sinks`` entry point ``opcua-server``; see README.md in this folder.
"""

from __future__ import annotations

from gateway.sinks.base import SinkType
from gateway.sinks.opcua_server.config import OpcUaServerSinkConfig
from gateway.sinks.opcua_server.sink import OpcUaServerSink

plugin = SinkType("opcua-server", OpcUaServerSinkConfig, OpcUaServerSink)

__all__ = ["OpcUaServerSink", "OpcUaServerSinkConfig", "plugin"]
