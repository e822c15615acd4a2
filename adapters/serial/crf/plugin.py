"""The object the core finds under the ``cgt_gateway.adapters`` entry point ``crf``."""

from __future__ import annotations

from typing import ClassVar

from adapters.serial.crf.adapter import CrfAdapter
from adapters.serial.crf.config import CrfEquipmentConfig
from gateway.adapter import SharedResources
from gateway.config import EquipmentConfig
from gateway.errors import ConfigError
from gateway.freezing import ConformanceMonitor
from gateway.monitors import RecordMonitor
from gateway.points import DeviceMap


class CrfPlugin:
    """Stateless: the approved profiles and the point map are kept on the equipment entry."""

    kind: ClassVar[str] = "crf"
    config_model: ClassVar[type[CrfEquipmentConfig]] = CrfEquipmentConfig

    def device_map(self, equipment: EquipmentConfig) -> DeviceMap:
        return _crf(equipment).device_map

    def create(self, equipment: EquipmentConfig, resources: SharedResources) -> CrfAdapter:
        """A new, unconnected adapter (one freezer per serial line: nothing shared)."""
        return CrfAdapter(_crf(equipment))

    def monitors(self, equipment: EquipmentConfig, device_map: DeviceMap) -> list[RecordMonitor]:
        """Profile conformance against the entry's approved profiles."""
        return [ConformanceMonitor(_crf(equipment).profiles)]


def _crf(equipment: EquipmentConfig) -> CrfEquipmentConfig:
    if not isinstance(equipment, CrfEquipmentConfig):
        raise ConfigError(f"{equipment.id}: kind {equipment.kind!r} is not served by the crf adapter")
    return equipment


plugin = CrfPlugin()
