"""The object the core finds under the ``cgt_gateway.adapters`` entry point ``opcua``."""

from __future__ import annotations

from typing import ClassVar

from adapters.opcua.adapter import OpcUaAdapter, OpcUaPollAdapter
from adapters.opcua.config import OpcUaEquipmentConfig
from adapters.opcua.nodemap import NodeMap
from gateway.adapter import SharedResources
from gateway.config import EquipmentConfig
from gateway.errors import ConfigError


class OpcUaPlugin:
    """Stateless: the node map is cached on the equipment entry it belongs to, not here."""

    kind: ClassVar[str] = "opcua"
    config_model: ClassVar[type[OpcUaEquipmentConfig]] = OpcUaEquipmentConfig

    def device_map(self, equipment: EquipmentConfig) -> NodeMap:
        """The entry's node map; ConfigError with ``FILE:LINE: path: message`` lines if it is wrong."""
        return _opcua(equipment).load_map()

    def create(self, equipment: EquipmentConfig, resources: SharedResources) -> OpcUaAdapter | OpcUaPollAdapter:
        """A new, unconnected adapter with its own session (one server is one device: nothing shared)."""
        eq = _opcua(equipment)
        if eq.mode == "poll":
            return OpcUaPollAdapter(eq, eq.load_map())
        return OpcUaAdapter(eq, eq.load_map())


def _opcua(equipment: EquipmentConfig) -> OpcUaEquipmentConfig:
    if not isinstance(equipment, OpcUaEquipmentConfig):
        raise ConfigError(f"{equipment.id}: kind {equipment.kind!r} is not served by the opcua adapter")
    return equipment


plugin = OpcUaPlugin()
