"""The ``type: http`` entry under ``sinks:``. Pydantic only: no I/O beyond finding the TLS files.

A bearer token never stands in the site file: the entry names an environment variable or a file that
holds it, so a site file can be reviewed, hashed and versioned without leaking a credential. The
token file is read at connect (a mounted secret may appear after the file is checked); the TLS files
must exist at load, so ``check-config`` finds a wrong path before the gateway runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.config import existing_file, resolve_path
from gateway.sinks.base import SinkConfig

#: Headers the sink sets itself; a site file may not override them.
RESERVED_HEADERS = frozenset({"authorization", "content-type", "idempotency-key", "content-length", "host"})

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"




class HttpSinkConfig(SinkConfig):
    """Where the MES takes records over HTTP(S), how the gateway authenticates, and which TLS it trusts."""

    type: Literal["http"] = Field(description="this sink posts batches of records to an MES over HTTP(S)")
    url: str = Field(description="http:// or https:// address the batches are POSTed to, e.g. https://mes/records")
    timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="seconds one request may take in total (connect, send, answer)"
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="extra static headers sent with every request (not Authorization: use bearer_token_env)",
    )
    bearer_token_env: str | None = Field(
        default=None, pattern=_ENV_NAME, description="environment variable holding the bearer token"
    )
    bearer_token_file: Path | None = Field(
        default=None, description="file holding the bearer token (first line), relative to this site file"
    )
    verify_tls: bool = Field(
        default=True, description="check the MES certificate and host name; false only while commissioning"
    )
    ca_file: Path | None = Field(
        default=None, description="PEM file of the CA(s) the MES certificate must chain to (instead of the system's)"
    )
    client_cert: Path | None = Field(
        default=None, description="PEM certificate the gateway shows for mutual TLS (needs client_key)"
    )
    client_key: Path | None = Field(default=None, description="PEM private key of client_cert (needs client_cert)")

    _token_file = field_validator("bearer_token_file")(resolve_path)
    _tls_files = field_validator("ca_file", "client_cert", "client_key")(existing_file)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_token(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("token", "bearer_token", "password"):
                if key in data:
                    raise ValueError(
                        f"`{key}:` is not allowed in a site file: put the token in an environment variable "
                        "(bearer_token_env) or a protected file (bearer_token_file)"
                    )
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http://host/... or https://host/..., not {value!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not hold credentials: use bearer_token_env or bearer_token_file")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError as exc:
            raise ValueError(f"url {value!r}: {exc}") from exc
        return value

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(name for name in value if name.lower() in RESERVED_HEADERS)
        if taken:
            raise ValueError(
                f"headers may not set {', '.join(taken)}: the sink sets them itself "
                "(the token comes from bearer_token_env or bearer_token_file)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HttpSinkConfig:
        if self.bearer_token_env is not None and self.bearer_token_file is not None:
            raise ValueError("give bearer_token_env or bearer_token_file, not both")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both client_cert and client_key (or neither)")
        tls = [f for f in ("ca_file", "client_cert", "client_key") if getattr(self, f) is not None]
        if not self.verify_tls:
            tls.append("verify_tls")
        if tls and not self.is_https:
            raise ValueError(f"{', '.join(tls)} need an https:// url")
        if not self.verify_tls and self.ca_file is not None:
            raise ValueError("verify_tls: false ignores ca_file: give ca_file and keep verify_tls true")
        return self

    @property
    def is_https(self) -> bool:
        return urlsplit(self.url).scheme == "https"
