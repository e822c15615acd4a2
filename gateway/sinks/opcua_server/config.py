"""The ``type: opcua-server`` entry under ``sinks:``. Pydantic only: no I/O beyond resolving paths."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from gateway.config import resolve_path
from gateway.sinks.base import SinkConfig

SecurityPolicyName = Literal["None", "Basic256Sha256_SignAndEncrypt"]


class OpcUaServerSinkConfig(SinkConfig):
    """An OPC UA server inside the gateway holding the latest value of every parameter, read-only.

    Safe by default: only ``Basic256Sha256_SignAndEncrypt`` endpoints are offered, so nothing crosses
    the network in clear; a site that must serve a legacy client without security adds ``"None"`` to
    ``security_policies`` on purpose.
    """

    type: Literal["opcua-server"] = Field(description="an OPC UA server that SCADA and MES clients read")
    endpoint: str = Field(
        default="opc.tcp://127.0.0.1:4841/cgt-gateway/",
        description="opc.tcp://HOST:PORT/PATH the server listens on; 0.0.0.0 listens on every interface",
    )
    namespace_uri: str | None = Field(
        default=None,
        min_length=1,
        description="namespace URI of the gateway's nodes (default urn:cgt-gateway:<gateway_id>)",
    )
    server_name: str = Field(default="cgt-gateway", min_length=1, description="ApplicationName clients see")
    security_policies: list[SecurityPolicyName] = Field(
        default_factory=lambda: ["Basic256Sha256_SignAndEncrypt"],
        min_length=1,
        description="endpoints offered; add None only where the site allows unencrypted clients",
    )
    certificate: Path = Field(
        default=Path("pki/opcua-server-cert.der"),
        validate_default=True,
        description="server certificate (DER or PEM), relative to this file; generated self-signed if missing",
    )
    private_key: Path = Field(
        default=Path("pki/opcua-server-key.pem"),
        validate_default=True,
        description="server private key (PEM), relative to this file; generated with the certificate",
    )
    trusted_clients_dir: Path | None = Field(
        default=None,
        description="folder of client certificates (DER or PEM) admitted; unset: any client certificate",
    )

    _paths = field_validator("certificate", "private_key", "trusted_clients_dir")(resolve_path)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        url = urlparse(value)
        if url.scheme != "opc.tcp" or not url.hostname:
            raise ValueError(f"{value!r} is not an opc.tcp://HOST:PORT/PATH url")
        try:
            url.port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise ValueError(f"{value!r}: the port is not a number in 0..65535") from exc
        return value

    @field_validator("security_policies")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"{value}: each policy once")
        return value

    @model_validator(mode="after")
    def _distinct_files(self) -> OpcUaServerSinkConfig:
        if self.certificate == self.private_key:
            raise ValueError("certificate and private_key must be two different files")
        return self

    @property
    def needs_certificate(self) -> bool:
        return any(p != "None" for p in self.security_policies)
