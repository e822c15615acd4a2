"""Who may talk to the gateway's OPC UA server, and with what: certificates, client trust, read-only users.

Three decisions, each documented in the README:

* The server certificate is the site's if both files exist (used as they are, never replaced), or a
  self-signed pair generated there on first start (private key mode 0600). A certificate without its
  key is an error, not a reason to overwrite it.
* Client certificates: with ``trusted_clients_dir`` only the certificates found in that folder (read
  again on every new session, so trusting a client is dropping its certificate in) get a secure
  channel; without it any client certificate that passes the basic checks (validity period, URI) is
  accepted, which encrypts the channel but does not authenticate the client. Both are logged.
* Every session is a plain user whatever token it brings, and plain users may browse, read and
  subscribe but not write, call methods or change the address space: asyncua's default would make a
  client that logs in as ``admin`` an administrator.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import structlog
from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import USER_TYPES, SimpleRoleRuleset, User, UserRole
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.sinks.base import SinkError

log = structlog.get_logger("gateway.sinks.opcua_server")

#: Requests a client may make: everything a reader needs, nothing that changes data or the server.
_REFUSED = {
    ua.ObjectIds.WriteRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CallRequest_Encoding_DefaultBinary,
}
_READER_REQUESTS = {ua.NodeId(t) for t in USER_TYPES if t not in _REFUSED}
_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


class ReadOnlyRules(SimpleRoleRuleset):
    """Every role may only read, browse and subscribe (writes are refused with BadUserAccessDenied)."""

    def __init__(self) -> None:
        super().__init__()
        self._permission_dict = {role: set(_READER_REQUESTS) for role in UserRole}


class ReadOnlyUsers:
    """Gives every session the plain User role, never Admin (asyncua's default honours ``admin``)."""

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User:
        return User(role=UserRole.User)


def thumbprint(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def certificate_uri(der: bytes) -> str | None:
    """The application URI in a certificate's subjectAltName, if it has one."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def certificate_der(path: Path) -> bytes:
    """A certificate file, DER or PEM, as DER bytes."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return x509.load_der_x509_certificate(data).public_bytes(Encoding.DER)


async def ensure_certificate(cert: Path, key: Path, app_uri: str, server_name: str) -> str:
    """Make sure the server has a certificate and key; return the application URI to announce.

    Existing files are used as they are and their URI is announced (a client checks that the two
    match); missing ones are generated, self-signed, valid one year.
    """
    cert_there, key_there = await asyncio.to_thread(_prepare_folders, cert, key)
    if cert_there and key_there:
        der = await asyncio.to_thread(certificate_der, cert)
        return certificate_uri(der) or app_uri
    if cert_there:
        raise SinkError(
            f"{cert} exists but its private key {key} does not: put the key there, or remove the certificate "
            "to have a new pair generated"
        )
    generated_key = not key_there
    await setup_self_signed_certificate(
        key,
        cert,
        app_uri,
        socket.gethostname(),
        [ExtendedKeyUsageOID.SERVER_AUTH],
        {"commonName": server_name[:64], "organizationName": "cgt-gateway"},
    )
    if generated_key:
        await asyncio.to_thread(os.chmod, key, 0o600)
    der = await asyncio.to_thread(certificate_der, cert)
    log.info(
        "opcua server certificate generated (self-signed)",
        certificate=str(cert),
        thumbprint=thumbprint(der),
        application_uri=app_uri,
    )
    return app_uri


def _prepare_folders(cert: Path, key: Path) -> tuple[bool, bool]:
    """Whether the certificate and the key exist; their folders are created for a generated pair."""
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    return cert.is_file(), key.is_file()


class ClientTrust:
    """The certificate check run when a client creates a session with a certificate.

    Basic checks always (validity period, the URI matches the client's description); then, when a
    trusted folder is set, the certificate itself must be in it. A refused client is logged once per
    certificate with what to do.
    """

    def __init__(self, trusted_dir: Path | None) -> None:
        self.trusted_dir = trusted_dir
        self._basic = CertificateValidator(
            CertificateValidatorOptions.BASIC_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
        )
        self._refused: set[str] = set()
        self._unreadable: set[Path] = set()

    async def prepare(self) -> None:
        """Create the trusted folder if it is configured but missing, so the site knows where to put certs."""
        if self.trusted_dir is not None and not self.trusted_dir.is_dir():
            await asyncio.to_thread(self.trusted_dir.mkdir, parents=True, exist_ok=True)
            log.warning("opcua server: no client is trusted yet", trusted_clients_dir=str(self.trusted_dir))

    async def __call__(self, cert: x509.Certificate, description: ua.ApplicationDescription) -> None:
        await self._basic.validate(cert, description)
        if self.trusted_dir is None:
            return
        der = cert.public_bytes(Encoding.DER)
        if der in await asyncio.to_thread(self._trusted):
            return
        print_ = thumbprint(der)
        if print_ not in self._refused:
            self._refused.add(print_)
            log.warning(
                "opcua server: client certificate not trusted; copy it into trusted_clients_dir to admit the client",
                thumbprint=print_,
                application_uri=description.ApplicationUri,
                subject=cert.subject.rfc4514_string(),
                trusted_clients_dir=str(self.trusted_dir),
            )
        raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    def _trusted(self) -> set[bytes]:
        assert self.trusted_dir is not None
        trusted: set[bytes] = set()
        for path in sorted(self.trusted_dir.iterdir()) if self.trusted_dir.is_dir() else ():
            if path.suffix.lower() not in _CERT_SUFFIXES or not path.is_file():
                continue
            try:
                trusted.add(certificate_der(path))
            except ValueError:
                if path not in self._unreadable:
                    self._unreadable.add(path)
                    log.warning("opcua server: not a certificate, ignored", file=str(path))
        return trusted
