"""Refusals a site must be able to read in one line: a certificate past its validity (the gateway's own or the
server's, pinned or not) and a login the server does not accept (anonymous where it wants a user, a wrong
password). Each is a SetupError (Bad_ConfigurationError), so the gap is journalled as "refused", not "lost"."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.opcua import SetupError
from adapters.opcua.session import certificate_der, thumbprint
from gateway.records import Quality
from tests.integration.test_opcua_support import LadsServer, equipment, first_batches

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVER_URI = "urn:cgt-gateway:test:closed-processor"
PASSWORD_ENV = "CGT_TEST_OPCUA_REFUSAL_PASSWORD"


def _cert(folder: Path, name: str, uri: str, usage: x509.ObjectIdentifier, *, expired: bool = False) -> None:
    """An RSA application certificate (what Basic256Sha256 needs), valid now or ended yesterday."""
    key = generate_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    start, end = (now - timedelta(days=366), now - timedelta(days=1)) if expired else (now - timedelta(hours=1),
                                                                                      now + timedelta(days=30))
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri),
                                                    x509.DNSName(socket.gethostname())]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}_key.pem").write_bytes(dump_private_key_as_pem(key))
    (folder / f"{name}_cert.der").write_bytes(cert.public_bytes(Encoding.DER))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _cert(d, "server", SERVER_URI, ExtendedKeyUsageOID.SERVER_AUTH)
    _cert(d, "old_server", SERVER_URI, ExtendedKeyUsageOID.SERVER_AUTH, expired=True)
    _cert(d, "client", "urn:cgt-gateway:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    _cert(d, "old_client", "urn:cgt-gateway:client", ExtendedKeyUsageOID.CLIENT_AUTH, expired=True)
    return d


class _Accounts:
    """One account; anyone else (anonymous included, by the token types offered) is refused."""

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                 certificate: object = None) -> User | None:
        return User(role=UserRole.User) if (username, password) == ("operator", "s3cret") else None


async def _secure_server(pki: Path, cert: str, *, accounts: bool) -> LadsServer:
    srv = LadsServer()

    async def secure(s: Server) -> None:
        await s.set_application_uri(SERVER_URI)
        await s.load_certificate(str(pki / f"{cert}_cert.der"))
        await s.load_private_key(str(pki / f"{cert}_key.pem"))
        s.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        if accounts:
            s.iserver.user_manager = _Accounts()
            s.set_identity_tokens([ua.UserNameIdentityToken])

    srv.extra_setup = secure
    await srv.start()
    return srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(pki: Path) -> AsyncIterator[LadsServer]:
    """A valid server certificate; only the account ``operator`` may log in."""
    srv = await _secure_server(pki, "server", accounts=True)
    yield srv
    await srv.stop()


def _security(pki: Path, client: str = "client", trusted: str = "server", **extra: object) -> dict[str, object]:
    return {
        "policy": "Basic256Sha256", "mode": "SignAndEncrypt",
        "client_certificate": str(pki / f"{client}_cert.der"), "client_private_key": str(pki / f"{client}_key.pem"),
        "trusted_server_certificates": [str(pki / f"{trusted}_cert.der")], **extra,
    }


async def test_the_gateways_expired_certificate_is_refused_before_any_session(server: LadsServer, pki: Path) -> None:
    eq = equipment(server, security=_security(pki, client="old_client"))
    with pytest.raises(SetupError) as err:
        await first_batches(eq, lambda bs: True)
    message = str(err.value)
    assert message.startswith(f"CP-1 {server.endpoint}: client certificate {pki / 'old_client_cert.der'} expired on ")
    assert message.endswith(" UTC: renew it")
    assert err.value.quality == Quality.BAD_CONFIGURATION_ERROR
    assert server.sessions() == 0


async def test_a_pinned_server_certificate_past_its_validity_is_refused(pki: Path) -> None:
    old = await _secure_server(pki, "old_server", accounts=False)
    try:
        eq = equipment(old, security=_security(pki, trusted="old_server"))
        with pytest.raises(SetupError) as err:
            await first_batches(eq, lambda bs: True)
        served = thumbprint(certificate_der(pki / "old_server_cert.der"))
        assert f"server certificate sha256:{served} expired on " in str(err.value)
        assert str(err.value).endswith(" UTC: refusing to connect")
        assert old.sessions() == 0
    finally:
        await old.stop()


async def test_an_anonymous_login_the_server_refuses_says_it_wants_a_user(server: LadsServer, pki: Path) -> None:
    with pytest.raises(SetupError) as err:
        await first_batches(equipment(server, security=_security(pki)), lambda bs: True)
    assert str(err.value) == (
        f"CP-1 {server.endpoint}: the server refused the anonymous login (BadIdentityTokenRejected): "
        "it wants a user: set username and password_env or password_file"
    )
    assert err.value.quality == Quality.BAD_CONFIGURATION_ERROR


async def test_a_wrong_password_is_refused_by_name_and_the_right_one_reads(
    server: LadsServer, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eq = equipment(server, security=_security(pki, username="operator", password_env=PASSWORD_ENV))
    monkeypatch.setenv(PASSWORD_ENV, "guessed")
    with pytest.raises(SetupError, match=r"the server refused user 'operator' \(BadUserAccessDenied\): check the"):
        await first_batches(eq, lambda bs: True)
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    batches = await first_batches(eq, lambda bs: any(r.point == "temperature" for b in bs for r in b.readings))
    (temp,) = [r for b in batches for r in b.readings if r.point == "temperature"]
    assert temp.quality is Quality.GOOD and temp.value == 36.9
