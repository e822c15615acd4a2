"""Modbus TCP and RTU adapter: register maps as data, one shared connection per bus.

The core finds :data:`plugin` through the ``cgt_gateway.adapters`` entry point ``modbus``.
"""

from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusEquipmentConfig
from adapters.modbus.plugin import ModbusPlugin, plugin
from adapters.modbus.registermap import ModbusPoint, RegisterMap, load_register_map

__all__ = [
    "ModbusAdapter",
    "ModbusEquipmentConfig",
    "ModbusPlugin",
    "ModbusPoint",
    "RegisterMap",
    "load_register_map",
    "plugin",
]
