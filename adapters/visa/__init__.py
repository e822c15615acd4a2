"""VISA/SCPI instruments (temperature DAQs on cryo-storage, benchtop instruments) through pyvisa-py.

The core finds :data:`plugin` through the ``cgt_gateway.adapters`` entry point ``visa``.
"""

from adapters.visa.adapter import IdentityMismatch, RejectedSetup, VisaAdapter
from adapters.visa.config import ExpectedIdentity, VisaEquipmentConfig
from adapters.visa.instrumentmap import InstrumentMap, ScanQuery, VisaPoint, load_instrument_map
from adapters.visa.plugin import VisaPlugin, plugin

__all__ = [
    "ExpectedIdentity",
    "IdentityMismatch",
    "InstrumentMap",
    "RejectedSetup",
    "ScanQuery",
    "VisaAdapter",
    "VisaEquipmentConfig",
    "VisaPlugin",
    "VisaPoint",
    "load_instrument_map",
    "plugin",
]
