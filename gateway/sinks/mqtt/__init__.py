"""The MQTT sink: committed records on ISA-95 topics of a unified namespace, with birth and last will.

The core finds :data:`plugin` through the ``cgt_gateway.sinks`` entry point ``mqtt``.
"""

from __future__ import annotations

from gateway.sinks.base import SinkType
from gateway.sinks.mqtt.config import MqttSinkConfig
from gateway.sinks.mqtt.sink import MqttSink
from gateway.sinks.mqtt.topics import UNASSIGNED, equipment_topic, record_topic, records_topic, segment, status_topic

plugin = SinkType("mqtt", MqttSinkConfig, MqttSink)

__all__ = [
    "UNASSIGNED",
    "MqttSink",
    "MqttSinkConfig",
    "equipment_topic",
    "plugin",
    "record_topic",
    "records_topic",
    "segment",
    "status_topic",
]
