"""The MQTT sink: committed records on ISA-95 topics of a unified namespace, with birth and last will.

The core finds :data:`plugin` through the ``cgt_gateway.sinks`` entry point ``mqtt``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.errors import ConfigError
from gateway.sinks.base import SinkContext
from gateway.sinks.mqtt.config import MqttSinkConfig
from gateway.sinks.mqtt.sink import MqttSink
from gateway.sinks.mqtt.topics import UNASSIGNED, record_topic, segment, status_topic


class MqttSinkPlugin:
    """Stateless: every sink it creates owns its own connection."""

    type: ClassVar[str] = "mqtt"
    config_model: ClassVar[type[MqttSinkConfig]] = MqttSinkConfig

    def create(self, config: Any, context: SinkContext) -> MqttSink:
        """A new, unconnected sink; ConfigError when its password or certificates cannot be read."""
        if not isinstance(config, MqttSinkConfig):
            raise ConfigError(f"sinks: {getattr(config, 'name', '?')}: type {config.type!r} is not the mqtt sink")
        return MqttSink(config, context)


plugin = MqttSinkPlugin()

__all__ = [
    "UNASSIGNED",
    "MqttSink",
    "MqttSinkConfig",
    "MqttSinkPlugin",
    "plugin",
    "record_topic",
    "segment",
    "status_topic",
]
