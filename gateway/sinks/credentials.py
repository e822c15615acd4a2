"""Secrets and TLS settings of the network sinks, read the same way for every sink.

A secret never stands in a site file: the file names an environment variable or a file whose first
line holds it. Both are read when the sink connects, so a missing secret is a sink failure (logged once,
retried, visible in ``cgt-gateway sinks``) while the devices keep being read and journalled.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from gateway.sinks.base import SinkError


def read_secret(owner: str, what: str, *, env: str | None, env_field: str, file: Path | None,
                file_field: str) -> str | None:
    """The secret from the environment variable ``env`` or the first line of ``file``; None when neither is set."""
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise SinkError(f"{owner}: environment variable {env} ({env_field}) is not set or empty: set it to {what}")
        return value
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SinkError(f"{owner}: cannot read {file_field} {file}: {error_reason(exc)}") from exc
        value = lines[0].strip() if lines else ""
        if not value:
            raise SinkError(f"{owner}: {file_field} {file} is empty: put {what} on its first line")
        return value
    return None


def tls_context(
    owner: str, *, ca_file: Path | None, client_cert: Path | None, client_key: Path | None, verify: bool
) -> ssl.SSLContext:
    """A client TLS context: the site's CA (or the system's), an optional client certificate, verification on."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise SinkError(f"{owner}: cannot load ca_file {ca_file}: {error_reason(exc)}") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None and client_key is not None:
        try:
            context.load_cert_chain(client_cert, client_key)
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(
                f"{owner}: cannot load client_cert {client_cert} with client_key {client_key}: {error_reason(exc)}"
            ) from exc
    return context


def error_reason(exc: BaseException | None) -> str:
    """An exception as a short phrase ("Connection refused"), never a multi-line repr."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        text = exc.verify_message
    elif isinstance(exc, ssl.SSLError):
        text = exc.reason or str(exc)
    elif isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(str(text).split())
