"""The object the core finds under the ``cgt_gateway.adapters`` entry point ``modbus``."""

from __future__ import annotations

from typing import ClassVar

from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusEquipmentConfig
from adapters.modbus.registermap import RegisterMap
from gateway.adapter import SharedResources
from gateway.config import EquipmentConfig
from gateway.errors import ConfigError


class ModbusPlugin:
    """Stateless: the register map is cached on the equipment entry it belongs to, not here."""

    kind: ClassVar[str] = "modbus"
    config_model: ClassVar[type[ModbusEquipmentConfig]] = ModbusEquipmentConfig

    def device_map(self, equipment: EquipmentConfig) -> RegisterMap:
        """The entry's register map; ConfigError with ``FILE:LINE: path: message`` lines if it is wrong."""
        return _modbus(equipment).load_map()

    def create(self, equipment: EquipmentConfig, resources: SharedResources) -> ModbusAdapter:
        """A new, unconnected adapter; devices on one bus share it through ``resources``."""
        eq = _modbus(equipment)
        return ModbusAdapter(eq, eq.load_map(), resources)


def _modbus(equipment: EquipmentConfig) -> ModbusEquipmentConfig:
    if not isinstance(equipment, ModbusEquipmentConfig):
        raise ConfigError(f"{equipment.id}: kind {equipment.kind!r} is not served by the modbus adapter")
    return equipment


plugin = ModbusPlugin()
