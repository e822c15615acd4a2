"""The ``kind: opcua`` equipment entry of a site file. Pydantic only: no I/O beyond finding files.

A password never stands in the site file: the entry names an environment variable or a file that
holds it, so a site file can be reviewed, hashed and versioned without leaking a credential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from adapters.opcua.nodemap import NodeMap, load_node_map
from gateway.config import STRICT, EquipmentConfig, data_file_path, existing_data_file, existing_file


def node_map_path(value: str, context: dict[str, Any] | None) -> Path:
    """A shipped map by name (``config/nodemaps/<name>.yaml``) or the site's own map file."""
    return data_file_path(value, context, "nodemaps")




class OpcUaSecurity(BaseModel):
    """How the secure channel is protected and who the gateway says it is.

    With ``Basic256Sha256`` the server's certificate must be one of ``trusted_server_certificates``
    (compared byte for byte before the session is activated), unless ``trust_on_first_use`` is set,
    which accepts whatever certificate the server shows and logs its thumbprint as a warning on every
    connect: for commissioning, never for production.
    """

    model_config = STRICT

    policy: Literal["None", "Basic256Sha256"] = Field(default="None", description="OPC UA security policy")
    mode: Literal["Sign", "SignAndEncrypt"] | None = Field(
        default=None, description="message security mode; required with Basic256Sha256"
    )
    client_certificate: Path | None = Field(default=None, description="the gateway's certificate (DER or PEM)")
    client_private_key: Path | None = Field(default=None, description="the gateway's private key (PEM)")
    trusted_server_certificates: list[Path] = Field(
        default_factory=list, description="server certificates (DER or PEM) the gateway accepts"
    )
    trust_on_first_use: bool = Field(
        default=False, description="accept any server certificate and log it loudly (commissioning only)"
    )
    username: str | None = Field(default=None, min_length=1, description="user name for a UserName token")
    password_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable holding the password"
    )
    password_file: Path | None = Field(default=None, description="file holding the password (first line)")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError(
                "`password:` is not allowed in a site file: put the password in an environment variable "
                "(password_env) or a protected file (password_file)"
            )
        return data

    _files = field_validator("client_certificate", "client_private_key", "password_file")(existing_file)

    @field_validator("trusted_server_certificates")
    @classmethod
    def _trusted_exist(cls, value: list[Path], info: ValidationInfo) -> list[Path]:
        return [existing_file(p, info) for p in value]

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSecurity:
        if self.policy == "None":
            stray = [
                f
                for f in ("mode", "client_certificate", "client_private_key", "trusted_server_certificates")
                if getattr(self, f)
            ]
            if self.trust_on_first_use:
                stray.append("trust_on_first_use")
            if stray:
                raise ValueError(f"{', '.join(stray)} need policy Basic256Sha256 (policy is None)")
            if self.username is not None:
                raise ValueError("username with policy None would send the password unprotected: use Basic256Sha256")
        else:
            missing = [f for f in ("mode", "client_certificate", "client_private_key") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"policy Basic256Sha256 needs {', '.join(missing)}")
            if not self.trusted_server_certificates and not self.trust_on_first_use:
                raise ValueError(
                    "policy Basic256Sha256 needs trusted_server_certificates "
                    "(or trust_on_first_use: true while commissioning)"
                )
            if self.trusted_server_certificates and self.trust_on_first_use:
                raise ValueError("give trusted_server_certificates or trust_on_first_use, not both")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        has_password = self.password_env is not None or self.password_file is not None
        if self.username is None and has_password:
            raise ValueError("password_env / password_file need a username")
        if self.username is not None and not has_password:
            raise ValueError("username needs password_env or password_file")
        return self


class OpcUaEquipmentConfig(EquipmentConfig):
    """One OPC UA server (one device) and the node map saying which of its variables are read."""

    kind: Literal["opcua"] = Field(description="this entry is read by the OPC UA adapter")
    endpoint: str = Field(
        pattern=r"^opc\.tcp://[^/:\s]+(:\d{1,5})?(/\S*)?$", description="opc.tcp://host:port/path of the server"
    )
    node_map: str = Field(
        min_length=1,
        description="a shipped map by name (config/nodemaps/<name>.yaml) or a map file relative to this file",
    )
    mode: Literal["subscribe", "poll"] = Field(
        default="subscribe", description="subscribe: the server reports changes; poll: read every poll_interval_s"
    )
    publishing_interval_ms: float = Field(
        default=500.0, gt=0, le=60_000, description="subscription publishing interval"
    )
    timeout_s: float = Field(default=5.0, gt=0, le=120, description="seconds to wait for each service call")
    watchdog_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="seconds between keep-alive probes; a dead session is noticed after about this plus timeout_s",
    )
    queue_maxsize: int = Field(
        default=10_000,
        ge=10,
        le=1_000_000,
        description="notifications buffered in the gateway; on overflow the session is dropped and the gap journalled",
    )
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity)

    _map_path: Path | None = PrivateAttr(default=None)
    _map: NodeMap | None = PrivateAttr(default=None)

    @field_validator("node_map")
    @classmethod
    def _map_exists(cls, value: str, info: ValidationInfo) -> str:
        return existing_data_file(value, info.context, "nodemaps", "node map")

    @model_validator(mode="after")
    def _resolve_map(self, info: ValidationInfo) -> OpcUaEquipmentConfig:
        self._map_path = node_map_path(self.node_map, info.context)
        return self

    @property
    def node_map_path(self) -> Path:
        """The map file this entry uses, resolved when the entry was validated."""
        return self._map_path or node_map_path(self.node_map, None)

    @property
    def server_address(self) -> str:
        """``opc.tcp://host:port``: the part of every source URI that names the server."""
        scheme, _, rest = self.endpoint.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    def load_map(self) -> NodeMap:
        """The node map, loaded once per entry so the map checked at load is the map that runs."""
        if self._map is None:
            self._map = load_node_map(self.node_map_path)
        return self._map
