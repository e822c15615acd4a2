"""ASTM E1381 (LIS01-A2) link layer and E1394 (LIS2-A2) messages over a serial line: culture readers such as
BacT/ALERT. Pure codecs (:mod:`.frames`, :mod:`.link`, :mod:`.message`, :mod:`.results`) apart from the I/O
(:mod:`.adapter`); instrument layouts are profiles under ``config/astm-profiles/``.

The core finds :data:`plugin` through the ``cgt_gateway.adapters`` entry point ``astm``.
"""

from adapters.serial.astm.adapter import AstmAdapter
from adapters.serial.astm.config import AstmEquipmentConfig, AstmTimers
from adapters.serial.astm.frames import Frame, FrameError, build_frame, checksum, message_frames, parse_frame
from adapters.serial.astm.link import Link, LinkSettings, State
from adapters.serial.astm.message import Assembler, Delimiters, Discarded, Message, Rejected, parse_record
from adapters.serial.astm.monitor import PositiveCultureMonitor
from adapters.serial.astm.plugin import AstmPlugin, plugin
from adapters.serial.astm.profile import AstmProfile, load_profile
from adapters.serial.astm.versions import ResultVersions

__all__ = [
    "Assembler",
    "AstmAdapter",
    "AstmEquipmentConfig",
    "AstmPlugin",
    "AstmProfile",
    "AstmTimers",
    "Delimiters",
    "Discarded",
    "Frame",
    "FrameError",
    "Link",
    "LinkSettings",
    "Message",
    "PositiveCultureMonitor",
    "Rejected",
    "ResultVersions",
    "State",
    "build_frame",
    "checksum",
    "load_profile",
    "message_frames",
    "parse_frame",
    "parse_record",
    "plugin",
]
