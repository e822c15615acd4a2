"""HTTPS to the MES: a site CA the system does not trust, the CA given as ca_file, and mutual TLS."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from device_sims.mes import MesStandIn
from gateway.sinks import SinkError

from .support import GATEWAY_ID, MakeRecords, MakeSink, batch_of, connected


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, *, require_client: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=self.ca)
        return context


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path.with_suffix(".crt"), path.with_suffix(".key")


def _issue(
    subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, server: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
    return builder.sign(issuer_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A site CA (unknown to the system trust store) that signed the MES certificate and the gateway's."""
    folder = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("site CA", None)
    ca_path, _ = _write(folder / "ca", ca_cert, ca_key)
    server_cert, server_key = _write(folder / "mes", *_issue("mes.site", (ca_cert.subject, ca_key), server=True))
    client_cert, client_key = _write(folder / "gateway", *_issue("gateway suite-3", (ca_cert.subject, ca_key)))
    return Pki(ca_path, server_cert, server_key, client_cert, client_key)


async def test_a_certificate_from_a_ca_the_system_does_not_trust_is_refused(
    pki: Pki, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    async with MesStandIn(ssl=pki.server_context()) as mes, connected(make_sink(mes.endpoint)) as sink:
        assert mes.endpoint.startswith("https://127.0.0.1:")
        with pytest.raises(SinkError) as error:
            await sink.write(batch_of(records))
    message = str(error.value)
    assert message.startswith(f"mes: the MES certificate at {mes.endpoint} is not trusted (")
    assert message.endswith("): give the CA that signed it as ca_file") and "\n" not in message
    assert mes.requests == 0


async def test_with_the_site_ca_as_ca_file_the_batch_is_accepted(
    pki: Pki, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(3)
    async with (
        MesStandIn(ssl=pki.server_context()) as mes,
        connected(make_sink(mes.endpoint, ca_file=str(pki.ca))) as sink,
    ):
        assert await sink.write(batch_of(records)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2, 3]


async def test_verify_tls_false_accepts_any_certificate_for_commissioning(
    pki: Pki, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(1)
    async with (
        MesStandIn(ssl=pki.server_context()) as mes,
        connected(make_sink(mes.endpoint, verify_tls=False)) as sink,
    ):
        assert await sink.write(batch_of(records)) is None


async def test_mutual_tls_needs_the_client_certificate(
    pki: Pki, make_sink: MakeSink, make_records: MakeRecords
) -> None:
    records = await make_records(2)
    async with MesStandIn(ssl=pki.server_context(require_client=True)) as mes:
        async with connected(make_sink(mes.endpoint, ca_file=str(pki.ca))) as sink:
            with pytest.raises(
                SinkError, match=r"^mes: (TLS with|request to) the MES at https://\S+ failed: "
            ) as error:
                await sink.write(batch_of(records))
            assert "\n" not in str(error.value)
            assert str(error.value).endswith("(if the MES requires mutual TLS, give client_cert and client_key)")
        mtls = make_sink(
            mes.endpoint, ca_file=str(pki.ca), client_cert=str(pki.client_cert), client_key=str(pki.client_key)
        )
        async with connected(mtls) as sink:
            assert await sink.write(batch_of(records)) is None
    assert mes.sequences(GATEWAY_ID) == [1, 2]


async def test_a_client_key_that_does_not_match_its_certificate_is_a_sink_error_at_connect(
    pki: Pki, make_sink: MakeSink
) -> None:
    sink = make_sink(
        "https://127.0.0.1:9/records",
        ca_file=str(pki.ca),
        client_cert=str(pki.client_cert),
        client_key=str(pki.server_key),
    )
    with pytest.raises(SinkError, match=r"^mes: cannot load client_cert \S+gateway.crt with client_key \S+mes.key: "):
        await sink.connect()
    await sink.close()
