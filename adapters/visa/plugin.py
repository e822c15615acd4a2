"""The object the core finds under the ``cgt_gateway.adapters`` entry point ``visa``."""

from __future__ import annotations

from typing import ClassVar

from adapters.visa.adapter import VisaAdapter
from adapters.visa.config import VisaEquipmentConfig
from adapters.visa.instrumentmap import InstrumentMap
from gateway.adapter import SharedResources
from gateway.config import EquipmentConfig
from gateway.errors import ConfigError
from gateway.excursions import ExcursionMonitor, check_limits
from gateway.monitors import RecordMonitor
from gateway.points import DeviceMap


class VisaPlugin:
    """Stateless: the instrument map is cached on the equipment entry it belongs to, not here."""

    kind: ClassVar[str] = "visa"
    config_model: ClassVar[type[VisaEquipmentConfig]] = VisaEquipmentConfig

    def device_map(self, equipment: EquipmentConfig) -> InstrumentMap:
        """The entry's instrument map; ConfigError with ``FILE:LINE: path: message`` lines if it is wrong."""
        return _visa(equipment).load_map()

    def create(self, equipment: EquipmentConfig, resources: SharedResources) -> VisaAdapter:
        """A new, unconnected adapter with its own session and thread (an instrument shares nothing)."""
        eq = _visa(equipment)
        return VisaAdapter(eq, eq.load_map())

    def monitors(self, equipment: EquipmentConfig, device_map: DeviceMap) -> list[RecordMonitor]:
        """The entry's excursion limits as a monitor; a limit on a parameter the map lacks is a ConfigError."""
        eq = _visa(equipment)
        if not eq.excursions:
            return []
        units = {p.parameter: p.unit for p in device_map.points.values() if p.parameter is not None}
        problems = check_limits(eq.excursions, units)
        if problems:
            raise ConfigError([f"equipment {eq.id}: {p}" for p in problems])
        return [ExcursionMonitor(eq.excursions)]


def _visa(equipment: EquipmentConfig) -> VisaEquipmentConfig:
    if not isinstance(equipment, VisaEquipmentConfig):
        raise ConfigError(f"{equipment.id}: kind {equipment.kind!r} is not served by the visa adapter")
    return equipment


plugin = VisaPlugin()
