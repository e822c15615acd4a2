"""One asyncua server instance: endpoint, security policies and the self-signed certificate.

A fresh `asyncua.Server` is built for every start (first start and each `restart` fault), because
asyncua's server is not meant to be started again after `stop()`; the address space is rebuilt from the
process model, which the simulator keeps, so a restart loses sessions and subscriptions but not the run.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.errors import SimulatorError

from .nodes import NAMESPACE_URI

log = structlog.get_logger(__name__)

SECURITY_MODES = ("none", "sign", "sign_and_encrypt", "both")
ENDPOINT_PATH = "/cgt/closed-processor/"
APPLICATION_URI = "urn:cgt-gateway:sim:closed-processor:server"
CERT_NAME = "server_cert.der"
KEY_NAME = "server_key.pem"

_POLICIES = {
    "none": [ua.SecurityPolicyType.NoSecurity],
    "sign": [ua.SecurityPolicyType.Basic256Sha256_Sign],
    "sign_and_encrypt": [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
    "both": [
        ua.SecurityPolicyType.Basic256Sha256_Sign,
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ua.SecurityPolicyType.NoSecurity,
    ],
}

Builder = Callable[[Server, int], Awaitable[None]]


def quiet_asyncua() -> None:
    """asyncua logs every session, method call and revised timeout at INFO; keep only warnings and up.

    Set on the package logger only, so a host that quiets asyncua further (the gateway) keeps its say.
    """
    logger = logging.getLogger("asyncua")
    if logger.level == logging.NOTSET or logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)


async def ensure_certificate(cert_dir: Path, *, regenerate: bool = False) -> Path:
    """A self-signed server certificate (DER) and key in `cert_dir`; a new pair when `regenerate`."""
    cert, key = _prepare_cert_dir(cert_dir, regenerate)
    await setup_self_signed_certificate(
        key, cert, APPLICATION_URI, socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH],
        {"countryName": "DE", "organizationName": "cgt-gateway", "commonName": "closed-processor-sim"},
    )  # fmt: skip
    return cert


def _prepare_cert_dir(cert_dir: Path, regenerate: bool) -> tuple[Path, Path]:
    """Small, local file operations: not worth a thread."""
    cert, key = cert_dir / CERT_NAME, cert_dir / KEY_NAME
    if regenerate:
        cert.unlink(missing_ok=True)
        key.unlink(missing_ok=True)
    cert_dir.mkdir(parents=True, exist_ok=True)
    return cert, key


class Users:
    """asyncua's user manager for a server with accounts: a user name with its password, nobody else."""

    def __init__(self, accounts: Mapping[str, str]) -> None:
        self._accounts = dict(accounts)

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                 certificate: object = None) -> User | None:
        if username is not None and self._accounts.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None  # asyncua answers BadUserAccessDenied


class _Connections(list[Any]):
    """asyncua's list of open connections (``InternalServer.asyncio_transports``, where every new connection
    is appended before its first byte is read), so that a connection made while frozen is paused at once."""

    def __init__(self, frozen: Callable[[], bool]) -> None:
        super().__init__()
        self._frozen = frozen

    def append(self, transport: Any) -> None:
        super().append(transport)
        if self._frozen():
            transport.pause_reading()


class OpcServer:
    """Start and stop one asyncua server; `port` is the bound port (ask for it again on the next start).

    With `users` (name -> password) the server takes only UserName tokens: an anonymous session is
    refused at ActivateSession (BadIdentityTokenRejected), a wrong password too (BadUserAccessDenied).
    """

    def __init__(self, host: str, port: int, security: str, users: Mapping[str, str] | None = None) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"unknown security {security!r}; valid: {', '.join(SECURITY_MODES)}")
        self._host = host
        self._port = port
        self._security = security
        self._users = dict(users) if users else None
        self.frozen = False
        self.server: Server | None = None
        self.namespace_index: int | None = None

    @property
    def port(self) -> int:
        return self._port

    async def start(self, build: Builder, *, cert_dir: Path | None = None, new_certificate: bool = False) -> None:
        """Init a server, build its nodes, listen. SimulatorError if the port cannot be bound.

        Secure modes keep their certificate in `cert_dir`; the first start after a stop listens on the
        port the previous start bound, so a restarted server is where clients expect it.
        """
        if self._security != "none" and cert_dir is None:
            raise ValueError("a secure endpoint needs a cert_dir")
        quiet_asyncua()
        server = Server(user_manager=Users(self._users)) if self._users else Server()
        await server.init()
        try:
            if self._users:
                server.set_identity_tokens([ua.UserNameIdentityToken])
            server.iserver.asyncio_transports = _Connections(lambda: self.frozen)
            server.set_endpoint(f"opc.tcp://{self._host}:{self._port}{ENDPOINT_PATH}")
            server.set_server_name("cgt-gateway closed-processor simulator")
            await server.set_application_uri(APPLICATION_URI)
            server.set_security_policy(_POLICIES[self._security])
            if self._security != "none":
                assert cert_dir is not None
                cert = await ensure_certificate(cert_dir, regenerate=new_certificate)
                await server.load_certificate(str(cert))
                await server.load_private_key(str(cert_dir / KEY_NAME))
            idx = await server.register_namespace(NAMESPACE_URI)
            await build(server, idx)
            await server.start()
        except OSError as exc:
            await _stop_quietly(server)
            raise SimulatorError(
                f"closed-processor simulator cannot listen on {self._host}:{self._port}: {exc}"
            ) from exc
        except BaseException:
            await _stop_quietly(server)
            raise
        self._port = server.bserver.port
        self.server, self.namespace_index = server, idx
        log.debug("opc ua server started", port=self._port, security=self._security)

    def freeze(self, frozen: bool) -> None:
        """Stop reading every connection, and each new one as it is made: a hung device (sockets stay open,
        no FIN, no request read, so none answered; what was asked before may still get its answer).
        ``False`` reads them again."""
        self.frozen = frozen
        for transport in list(self.server.iserver.asyncio_transports) if self.server is not None else []:
            if transport.is_closing():
                continue
            if frozen:
                transport.pause_reading()
            else:
                transport.resume_reading()

    async def stop(self) -> None:
        """Close the listener and every session. Safe to call when not started."""
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    def session_count(self) -> int:
        """Open client sessions: asyncua registers each external session with the internal server."""
        if self.server is None:
            return 0
        return len(getattr(self.server.iserver, "_external_sessions", {}))


async def _stop_quietly(server: Server) -> None:
    try:
        await server.stop()
    except Exception:  # a half-started server may fail to stop; the start error is the one to report
        log.debug("stop after a failed start raised", exc_info=True)
