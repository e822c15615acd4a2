"""The ``kind: modbus`` equipment entry of a site file. Pydantic only: no I/O beyond finding the map file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from adapters.modbus.registermap import RegisterMap, load_register_map
from gateway.config import EquipmentConfig, data_file_path, existing_data_file

_SERIAL_FIELDS = ("serial_port", "baudrate", "parity", "stopbits", "bytesize")


def register_map_path(value: str, context: dict[str, Any] | None) -> Path:
    """A shipped map by name (``config/registermaps/<name>.yaml``) or the site's own map file."""
    return data_file_path(value, context, "registermaps")


class ModbusEquipmentConfig(EquipmentConfig):
    """One Modbus device: a unit id on a TCP endpoint or on a serial (RTU) line, and its register map.

    Several entries may name the same endpoint or serial port with different ``device_id``: they then
    share one connection, and their line settings, timeout and retries must agree.
    """

    kind: Literal["modbus"] = Field(description="this entry is read by the Modbus adapter")
    transport: Literal["tcp", "rtu"] = Field(description="tcp: Modbus TCP; rtu: Modbus RTU on a serial line")
    host: str | None = Field(default=None, min_length=1, description="tcp: the device or gateway host name or IP")
    port: int | None = Field(default=None, ge=1, le=65535, description="tcp: TCP port (502 on most devices)")
    serial_port: str | None = Field(default=None, min_length=1, description="rtu: serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=19200, gt=0, description="rtu: line speed in bit/s (Lighthouse REMOTE: 19200)")
    parity: Literal["N", "E", "O"] = Field(default="N", description="rtu: parity (Lighthouse: 8N1)")
    stopbits: Literal[1, 2] = Field(default=1, description="rtu: stop bits")
    bytesize: Literal[7, 8] = Field(default=8, description="rtu: data bits")
    device_id: int = Field(ge=1, le=247, description="Modbus unit id (slave address) of the device")
    register_map: str = Field(
        min_length=1,
        description="a shipped map by name (config/registermaps/<name>.yaml) or a map file relative to this file",
    )
    timeout_s: float = Field(default=1.0, gt=0, le=60, description="seconds to wait for each answer")
    retries: int = Field(default=0, ge=0, le=10, description="resends of an unanswered request before failing")

    _map_path: Path | None = PrivateAttr(default=None)
    _map: RegisterMap | None = PrivateAttr(default=None)

    @field_validator("register_map")
    @classmethod
    def _map_exists(cls, value: str, info: ValidationInfo) -> str:
        return existing_data_file(value, info.context, "registermaps", "register map")

    @model_validator(mode="after")
    def _transport_fields(self, info: ValidationInfo) -> ModbusEquipmentConfig:
        given = self.model_fields_set
        if self.transport == "tcp":
            missing = [f for f in ("host", "port") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"transport tcp needs {' and '.join(missing)}")
            stray = [f for f in _SERIAL_FIELDS if f in given]
            if stray:
                raise ValueError(f"{', '.join(stray)} apply to transport rtu, not tcp: remove them")
        else:
            if self.serial_port is None:
                raise ValueError("transport rtu needs serial_port")
            stray = [f for f in ("host", "port") if f in given]
            if stray:
                raise ValueError(f"{', '.join(stray)} apply to transport tcp, not rtu: remove them")
        self._map_path = register_map_path(self.register_map, info.context)
        return self

    @property
    def register_map_path(self) -> Path:
        """The map file this entry uses, resolved when the entry was validated."""
        return self._map_path or register_map_path(self.register_map, None)

    @property
    def endpoint(self) -> str:
        """The bus part of every source URI: ``modbus+tcp://host:port`` or ``modbus+rtu://<serial port>``."""
        if self.transport == "tcp":
            return f"modbus+tcp://{self.host}:{self.port}"
        return f"modbus+rtu://{self.serial_port}"

    def load_map(self) -> RegisterMap:
        """The register map, loaded once per entry so the map checked at load is the map that runs."""
        if self._map is None:
            self._map = load_register_map(self.register_map_path)
        return self._map
