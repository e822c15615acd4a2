"""Basic256Sha256 SignAndEncrypt with pinned server certificates: trusted connects, untrusted is refused."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID
from structlog.testing import capture_logs

from adapters.opcua import SetupError
from adapters.opcua.session import certificate_der, thumbprint
from gateway.records import Quality
from tests.integration.test_opcua_support import LadsServer, equipment, first_batches

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVER_URI = "urn:cgt-gateway:test:closed-processor"


async def _cert(directory: Path, name: str, uri: str, use: list) -> tuple[Path, Path]:
    key, cert = directory / f"{name}_key.pem", directory / f"{name}_cert.der"
    await setup_self_signed_certificate(key, cert, uri, socket.gethostname(), use, {"countryName": "DE"})
    return cert, key


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    await _cert(d, "server", SERVER_URI, [ExtendedKeyUsageOID.SERVER_AUTH])
    await _cert(d, "other", "urn:someone:else", [ExtendedKeyUsageOID.SERVER_AUTH])
    await _cert(d, "client", "urn:cgt-gateway:client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    return d


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(pki: Path) -> AsyncIterator[LadsServer]:
    srv = LadsServer()

    async def secure(s: Server) -> None:
        await s.set_application_uri(SERVER_URI)
        await s.load_certificate(str(pki / "server_cert.der"))
        await s.load_private_key(str(pki / "server_key.pem"))
        s.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])

    srv.extra_setup = secure
    await srv.start()
    yield srv
    await srv.stop()


def _security(pki: Path, **extra: object) -> dict[str, object]:
    return {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "client_certificate": str(pki / "client_cert.der"),
        "client_private_key": str(pki / "client_key.pem"),
        **extra,
    }


async def test_sign_and_encrypt_with_a_trusted_server_certificate(server: LadsServer, pki: Path) -> None:
    eq = equipment(server, security=_security(pki, trusted_server_certificates=[str(pki / "server_cert.der")]))
    batches = await first_batches(eq, lambda bs: any(r.point == "temperature" for b in bs for r in b.readings))
    (temp,) = [r for b in batches for r in b.readings if r.point == "temperature"]
    assert temp.quality is Quality.GOOD and temp.value == 36.9


async def test_a_plain_client_is_refused_by_a_secure_only_server(server: LadsServer) -> None:
    from gateway.errors import DeviceError

    with pytest.raises(DeviceError):
        await first_batches(equipment(server), lambda bs: True)


async def test_an_untrusted_server_certificate_is_refused_in_one_line(server: LadsServer, pki: Path) -> None:
    eq = equipment(server, security=_security(pki, trusted_server_certificates=[str(pki / "other_cert.der")]))
    with pytest.raises(SetupError) as err:
        await first_batches(eq, lambda bs: True)
    served = thumbprint(certificate_der(pki / "server_cert.der"))
    assert str(err.value) == (
        f"CP-1 {server.endpoint}: server certificate sha256:{served} is not in trusted_server_certificates: "
        "refusing to connect"
    )
    assert err.value.quality == Quality.BAD_CONFIGURATION_ERROR
    assert server.sessions() == 0


async def test_trust_on_first_use_connects_and_says_so_loudly(server: LadsServer, pki: Path) -> None:
    eq = equipment(server, security=_security(pki, trust_on_first_use=True))
    with capture_logs() as logs:
        await first_batches(eq, lambda bs: any(b.readings for b in bs))
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert "TRUSTING AN UNVERIFIED SERVER CERTIFICATE" in warning["event"]
    assert warning["thumbprint"] == "sha256:" + thumbprint(certificate_der(pki / "server_cert.der"))


async def test_username_and_password_from_the_environment(
    server: LadsServer, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = [str(pki / "server_cert.der")]
    eq = equipment(
        server,
        security=_security(
            pki, trusted_server_certificates=trusted, username="operator", password_env="CGT_TEST_OPCUA_PASSWORD"
        ),
    )
    monkeypatch.delenv("CGT_TEST_OPCUA_PASSWORD", raising=False)
    with pytest.raises(SetupError, match=r"CGT_TEST_OPCUA_PASSWORD \(password_env\) is not set"):
        await first_batches(eq, lambda bs: True)
    monkeypatch.setenv("CGT_TEST_OPCUA_PASSWORD", "s3cret")
    # the asyncua test server accepts any user: this checks the token goes through the secure session
    assert await first_batches(eq, lambda bs: any(b.readings for b in bs))
