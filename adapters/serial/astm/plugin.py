"""The object the core finds under the ``cgt_gateway.adapters`` entry point ``astm``."""

from __future__ import annotations

from typing import ClassVar

from adapters.serial.astm.adapter import AstmAdapter
from adapters.serial.astm.config import AstmEquipmentConfig
from adapters.serial.astm.monitor import PositiveCultureMonitor
from adapters.serial.astm.profile import AstmProfile
from gateway.adapter import SharedResources
from gateway.config import EquipmentConfig
from gateway.errors import ConfigError
from gateway.points import DeviceMap


class AstmPlugin:
    """Stateless: the profile is cached on the equipment entry it belongs to, not here."""

    kind: ClassVar[str] = "astm"
    config_model: ClassVar[type[AstmEquipmentConfig]] = AstmEquipmentConfig

    def device_map(self, equipment: EquipmentConfig) -> AstmProfile:
        """The entry's profile; ConfigError with ``FILE:LINE: path: message`` lines if it is wrong."""
        return _astm(equipment).load_profile()

    def create(self, equipment: EquipmentConfig, resources: SharedResources) -> AstmAdapter:
        """A new, unconnected adapter. One instrument per line: an ASTM line is point to point, nothing shared."""
        eq = _astm(equipment)
        return AstmAdapter(eq, eq.load_profile())

    def monitors(self, equipment: EquipmentConfig, device_map: DeviceMap) -> list[PositiveCultureMonitor]:
        """A positive culture alarms at once, in the same commit as the result."""
        profile = _astm(equipment).load_profile()
        return [PositiveCultureMonitor(profile)] if profile.positive is not None else []


def _astm(equipment: EquipmentConfig) -> AstmEquipmentConfig:
    if not isinstance(equipment, AstmEquipmentConfig):
        raise ConfigError(f"{equipment.id}: kind {equipment.kind!r} is not served by the astm adapter")
    return equipment


plugin = AstmPlugin()
