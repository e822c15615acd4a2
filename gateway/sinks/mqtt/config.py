"""The ``type: mqtt`` entry under ``sinks:``. Pydantic only: no I/O beyond checking that files exist.

A password never stands in the site file: the entry names an environment variable or a file that
holds it, so a site file can be reviewed, hashed and versioned without leaking a credential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.config import existing_file
from gateway.sinks.base import SinkConfig


class MqttSinkConfig(SinkConfig):
    """Publishes every committed record to an MQTT broker on its ISA-95 topic (a unified namespace)."""

    type: Literal["mqtt"] = Field(description="this sink publishes to an MQTT broker")
    host: str = Field(min_length=1, description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65_535, description="broker port (1883 plain, 8883 usually with TLS)")
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="MQTT client id; default cgt-gateway-<gateway id>-<sink name> (unique per broker!)",
    )
    topic_prefix: str = Field(
        default="cgt",
        min_length=1,
        pattern=r"^[^$+#\x00][^+#\x00]*$",
        description="first topic level(s) of every message, e.g. cgt or acme/cgt (no + or #, not starting with $)",
    )
    qos: Literal[1, 2] = Field(
        default=1, description="MQTT QoS of record messages: 1 (at least once) or 2; 0 can lose records"
    )
    max_inflight: int = Field(
        default=20, ge=1, le=65_535, description="most publishes waiting for their acknowledgement at once"
    )
    keepalive_s: int = Field(
        default=30, ge=5, le=65_535, description="MQTT keep-alive: a silent broker is noticed after 1.5x this"
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, le=600, description="longest wait for the broker to accept a connection (CONNACK)"
    )
    publish_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="longest wait for a broker's acknowledgement before reconnecting"
    )
    username: str | None = Field(default=None, min_length=1, description="user name the broker authenticates")
    password_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable holding the password"
    )
    password_file: Path | None = Field(
        default=None, description="file holding the password (first line), relative to this file"
    )
    tls: bool = Field(default=False, description="connect over TLS")
    ca_file: Path | None = Field(
        default=None, description="CA certificate(s) (PEM) the broker's certificate must chain to; default: system CAs"
    )
    client_cert: Path | None = Field(default=None, description="the gateway's client certificate (PEM) for mutual TLS")
    client_key: Path | None = Field(default=None, description="the private key (PEM) of client_cert")
    verify_tls: bool = Field(
        default=True, description="check the broker's certificate and host name; false only while commissioning"
    )
    retain_last: bool = Field(
        default=False, description="retain each parameter's last message so a new consumer sees the last value"
    )
    payload: Literal["json", "json-batch"] = Field(
        default="json",
        description=(
            "message format: json (one wire record per message, on its parameter's topic) or json-batch "
            "(a JSON array of consecutive wire records per message, on the batch_topic; for catch-up speed)"
        ),
    )
    batch_topic: Literal["equipment", "gateway"] = Field(
        default="equipment",
        description=(
            "json-batch: equipment puts consecutive records of one equipment on {prefix}/{site}/{area}/{unit}/"
            "{equipment_id}; gateway puts every record in order on {prefix}/_gateways/{gateway_id}/records"
        ),
    )
    max_records_per_message: int = Field(
        default=500, ge=1, le=50_000,
        description="json-batch: most records in one message (also bounded by batch.max_records)",
    )
    max_message_bytes: int = Field(
        default=1_000_000, ge=1024, le=268_435_455,
        description=(
            "json-batch: most payload bytes in one message; keep it under the broker's maximum packet size "
            "(a single record larger than this still goes, alone)"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsafe(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "password" in data:
                raise ValueError(
                    "`password:` is not allowed in a site file: put the password in an environment variable "
                    "(password_env) or a protected file (password_file)"
                )
            if data.get("qos") == 0:
                raise ValueError("qos 0 can lose records (no acknowledgement from the broker): use qos 1 or 2")
        return data

    _files = field_validator("password_file", "ca_file", "client_cert", "client_key")(existing_file)

    @model_validator(mode="after")
    def _consistent(self) -> MqttSinkConfig:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        if self.username is None and (self.password_env is not None or self.password_file is not None):
            raise ValueError("password_env / password_file need a username")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if self.payload == "json":
            batch_only = sorted({"batch_topic", "max_records_per_message", "max_message_bytes"} & self.model_fields_set)
            if batch_only:
                raise ValueError(f"{', '.join(batch_only)}: only for payload: json-batch (payload is json)")
        elif self.retain_last:
            raise ValueError(
                "retain_last needs payload: json "
                "(a retained batch holds a few records, not each parameter's last value)"
            )
        if not self.tls:
            stray = [f for f in ("ca_file", "client_cert", "client_key") if getattr(self, f) is not None]
            if not self.verify_tls:
                stray.append("verify_tls")
            if stray:
                raise ValueError(f"{', '.join(stray)} need tls: true")
        return self
