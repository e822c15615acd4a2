"""OPC UA adapter: node maps as data, one subscription per server, LADS programs as run events.

The core finds :data:`plugin` through the ``cgt_gateway.adapters`` entry point ``opcua``.
"""

from adapters.opcua.adapter import OpcUaAdapter, OpcUaPollAdapter
from adapters.opcua.config import OpcUaEquipmentConfig, OpcUaSecurity
from adapters.opcua.errors import SetupError
from adapters.opcua.nodemap import NodeMap, OpcUaPoint, ProgramSpec, load_node_map
from adapters.opcua.plugin import OpcUaPlugin, plugin

__all__ = [
    "NodeMap",
    "OpcUaAdapter",
    "OpcUaEquipmentConfig",
    "OpcUaPlugin",
    "OpcUaPoint",
    "OpcUaPollAdapter",
    "OpcUaSecurity",
    "ProgramSpec",
    "SetupError",
    "load_node_map",
    "plugin",
]
