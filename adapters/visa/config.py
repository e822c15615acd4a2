"""The ``kind: visa`` equipment entry of a site file. Pydantic only: no I/O beyond finding the map file.

Resource strings are checked with PyVISA's own parser (no instrument is contacted), and only the kinds
the pyvisa-py backend opens without extra drivers are accepted: ``TCPIP::host::port::SOCKET`` (raw
SCPI over TCP, port 5025 on most instruments), ``TCPIP::host[::name]::INSTR`` (VXI-11 or HiSLIP) and
``ASRL<device>::INSTR`` (a serial line, e.g. ``ASRL/dev/ttyUSB0::INSTR``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pyvisa import rname
from pyvisa.errors import VisaIOError

from adapters.visa.instrumentmap import InstrumentMap, load_instrument_map
from gateway.config import STRICT, EquipmentConfig, data_file_path, existing_data_file
from gateway.excursions import ExcursionLimit

_SERIAL_FIELDS = ("baud_rate", "data_bits", "parity", "stop_bits")


def instrument_map_path(value: str, context: dict[str, Any] | None) -> Path:
    """A shipped map by name (``config/visa-maps/<name>.yaml``) or the site's own map file."""
    return data_file_path(value, context, "visa-maps")


class ExpectedIdentity(BaseModel):
    """What ``*IDN?`` must say, field by field (compared exactly, surrounding spaces aside).

    ``serial: null`` accepts any serial number: say so on purpose, for commissioning; a GMP entry names
    the serial of the qualified instrument (21 CFR 11.10(h): the right device is the source of the data).
    """

    model_config = STRICT

    manufacturer: str = Field(min_length=1, description="first *IDN? field, e.g. Keysight Technologies")
    model: str = Field(min_length=1, description="second *IDN? field, e.g. DAQ970A")
    serial: str | None = Field(min_length=1, description="third *IDN? field; null accepts any serial (commissioning)")


class VisaEquipmentConfig(EquipmentConfig):
    """One SCPI instrument reached through VISA (pyvisa with the pyvisa-py backend)."""

    kind: Literal["visa"] = Field(description="this entry is read by the VISA adapter")
    resource: str = Field(
        min_length=1,
        description="VISA resource: TCPIP::host::port::SOCKET, TCPIP::host::INSTR or ASRL/dev/ttyUSB0::INSTR",
    )
    instrument_map: str = Field(
        min_length=1,
        description="a shipped map by name (config/visa-maps/<name>.yaml) or a map file relative to this file",
    )
    identity: ExpectedIdentity = Field(description="what the instrument must answer to *IDN?; checked at connect")
    timeout_s: float | None = Field(
        default=None, gt=0, le=120, description="seconds to wait for each reply (default: the map's timeout_s)"
    )
    read_termination: str | None = Field(default=None, min_length=1, description="default: the map's")
    write_termination: str | None = Field(default=None, min_length=1, description="default: the map's")
    baud_rate: int | None = Field(default=None, gt=0, description="ASRL only: line speed (default 9600)")
    data_bits: Literal[7, 8] | None = Field(default=None, description="ASRL only: data bits (default 8)")
    parity: Literal["none", "odd", "even"] | None = Field(default=None, description="ASRL only (default none)")
    stop_bits: Literal[1, 2] | None = Field(default=None, description="ASRL only: stop bits (default 1)")
    device_timezone: str = Field(
        default="UTC",
        description="IANA time zone the instrument's clock is set to (SCPI clocks carry no zone), e.g. "
        "Europe/Berlin; a clock that ignores DST is a fixed zone such as Etc/GMT-1 (one hour ahead of UTC)",
    )
    excursions: list[ExcursionLimit] = Field(
        default_factory=list,
        description="limits per parameter (e.g. above -150 Cel with delay_s and deadband): excursion alarm records",
    )

    _map_path: Path | None = PrivateAttr(default=None)
    _map: InstrumentMap | None = PrivateAttr(default=None)

    @field_validator("resource")
    @classmethod
    def _resource_kind(cls, value: str) -> str:
        try:
            parsed = rname.parse_resource_name(value)
        except (rname.InvalidResourceName, VisaIOError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a VISA resource string ({exc})") from None
        if isinstance(parsed, rname.TCPIPSocket):
            if not str(parsed.port).isdigit() or not 1 <= int(parsed.port) <= 65535:
                raise ValueError(f"{value!r}: the SOCKET port must be a number within 1..65535")
        elif not isinstance(parsed, rname.TCPIPInstr | rname.ASRLInstr):
            raise ValueError(
                f"{value!r}: the pyvisa-py backend here reads TCPIP::host::port::SOCKET, TCPIP::host::INSTR "
                "and ASRL<device>::INSTR resources"
            )
        return value

    @field_validator("device_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin, Etc/GMT-1)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The instrument clock's time zone."""
        return ZoneInfo(self.device_timezone)

    @field_validator("instrument_map")
    @classmethod
    def _map_exists(cls, value: str, info: ValidationInfo) -> str:
        return existing_data_file(value, info.context, "visa-maps", "instrument map")

    @model_validator(mode="after")
    def _serial_fields(self, info: ValidationInfo) -> VisaEquipmentConfig:
        if not self.is_serial:
            stray = [f for f in _SERIAL_FIELDS if f in self.model_fields_set]
            if stray:
                raise ValueError(f"{', '.join(stray)} apply to ASRL (serial) resources only: remove them")
        self._map_path = instrument_map_path(self.instrument_map, info.context)
        return self

    @property
    def is_serial(self) -> bool:
        return isinstance(rname.parse_resource_name(self.resource), rname.ASRLInstr)

    @property
    def instrument_map_path(self) -> Path:
        """The map file this entry uses, resolved when the entry was validated."""
        return self._map_path or instrument_map_path(self.instrument_map, None)

    def load_map(self) -> InstrumentMap:
        """The instrument map, loaded once per entry so the map checked at load is the map that runs."""
        if self._map is None:
            self._map = load_instrument_map(self.instrument_map_path)
        return self._map
