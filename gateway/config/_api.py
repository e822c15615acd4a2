"""The ``api:`` section of a site file: where the local operator API listens and who may use it.

Kept apart from :mod:`gateway.api` (which needs the running gateway) so the site model can import it
without pulling in the web server.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class ApiConfig(BaseModel):
    """The local HTTP API: status, metrics, records, bindings, alarms, exceptions and the audit trail."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    listen: str = Field(
        default="127.0.0.1:8765",
        description="HOST:PORT to listen on; localhost by default, another address must be given here on purpose",
    )
    users_file: Path = Field(
        default=Path("users.yaml"),
        validate_default=True,
        description="users and roles with sha256 hashes of their tokens (never tokens); relative to this file; "
        "made by `cgt-gateway user add`",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host_port(value)
        return value

    @field_validator("users_file")
    @classmethod
    def _relative_to_site(cls, value: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("config_dir")
        return value if value.is_absolute() or base is None else (Path(base) / value).resolve()

    @property
    def host(self) -> str:
        return host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return host_port(self.listen)[1]


def host_port(listen: str) -> tuple[str, int]:
    """``127.0.0.1:8765`` or ``[::1]:8765`` as (host, port); ValueError saying what is wrong."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ValueError(f"listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"listen {listen!r}: {host!r} is not an IPv6 address") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen {listen!r}: the port must be a number 0-65535")
    return host, int(port)
