"""Controlled-rate freezer adapter: a documented line protocol, a per-run record, profile conformance.

The core finds :data:`plugin` through the ``cgt_gateway.adapters`` entry point ``crf``.
"""

from adapters.serial.crf.adapter import CrfAdapter
from adapters.serial.crf.codec import LineError, crc16, frame, parse_line
from adapters.serial.crf.config import CrfEquipmentConfig
from adapters.serial.crf.plugin import CrfPlugin, plugin
from adapters.serial.crf.translate import LineAssembler, Translator

__all__ = [
    "CrfAdapter",
    "CrfEquipmentConfig",
    "CrfPlugin",
    "LineAssembler",
    "LineError",
    "Translator",
    "crc16",
    "frame",
    "parse_line",
    "plugin",
]
