"""The OPC UA server sink against real asyncua clients: the tree, latest values, status, timestamps, read-only
access, Basic256Sha256 with a generated server certificate and trusted client certificates, restart.

One server for the module (start and stop cost about a second each); the tests run in file order and
the last one restarts it.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID
from structlog.testing import capture_logs

from gateway.sinks import SinkContext, SinkError
from gateway.sinks.opcua_server import OpcUaServerSink, OpcUaServerSinkConfig, plugin
from gateway.sinks.opcua_server.security import certificate_der, thumbprint
from tests.sinks.opcua_server.opcua_server_support import GATEWAY, T0, WireSource, draft, node_at, read

pytestmark = pytest.mark.asyncio(loop_scope="module")
CP1 = (GATEWAY, "plant-1", "suite-3", "isolator-1", "CP-1")
SCADA_URI = "urn:cgt-gateway:test:scada"


async def _client_cert(directory: Path, name: str, uri: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}_key.pem", directory / f"{name}_cert.der"
    await setup_self_signed_certificate(
        key, cert, uri, socket.gethostname(), [ExtendedKeyUsageOID.CLIENT_AUTH], {"countryName": "DE"}
    )
    return cert, key


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder: the trusted SCADA client's certificate in pki/trusted, a stranger's beside it."""
    d = tmp_path_factory.mktemp("site")
    (d / "clients").mkdir()
    cert, _key = await _client_cert(d / "clients", "scada", SCADA_URI)
    await _client_cert(d / "clients", "stranger", "urn:someone:else")
    (d / "pki" / "trusted").mkdir(parents=True)
    shutil.copy(cert, d / "pki" / "trusted" / "scada.der")
    return d


def _config(site: Path, **extra: object) -> OpcUaServerSinkConfig:
    fields = {
        "name": "scada",
        "type": "opcua-server",
        "endpoint": "opc.tcp://127.0.0.1:0/cgt-gateway/",
        "trusted_clients_dir": "pki/trusted",
        **extra,
    }
    return OpcUaServerSinkConfig.model_validate(fields, context={"config_dir": str(site)})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sink(site: Path) -> AsyncIterator[OpcUaServerSink]:
    """The sink as a site would configure it: defaults (SignAndEncrypt only, generated certificate)."""
    s = plugin.create(_config(site), SinkContext(GATEWAY))
    await s.connect()
    yield s
    await s.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def source(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WireSource]:
    async with WireSource(tmp_path_factory.mktemp("journal") / "journal.db") as src:
        yield src


async def _secure_client(url: str, site: Path, name: str = "scada", uri: str = SCADA_URI) -> Client:
    client = Client(url, timeout=5)
    client.application_uri = uri
    cert, key = site / "clients" / f"{name}_cert.der", site / "clients" / f"{name}_key.pem"
    await client.set_security(
        SecurityPolicyBasic256Sha256, str(cert), str(key), mode=ua.MessageSecurityMode.SignAndEncrypt
    )
    return client


@pytest_asyncio.fixture(loop_scope="module")
async def scada(sink: OpcUaServerSink, site: Path) -> AsyncIterator[Client]:
    """A SCADA client with its own trusted certificate, over Basic256Sha256 SignAndEncrypt."""
    client = await _secure_client(sink.endpoint_url, site)
    async with client:
        yield client


async def test_a_parameter_reads_as_its_latest_value_with_status_and_device_time(
    sink: OpcUaServerSink, source: WireSource, scada: Client
) -> None:
    before = datetime.now(UTC)
    batch = await source.batch([draft("temperature", 36.9, 0), draft("temperature", 37.1, 1), draft("co2", 5.0, 2)])
    assert await sink.write(batch) is None  # all accepted

    node = await node_at(scada, sink.namespace_uri, *CP1, "temperature")
    dv = await read(scada, node)
    assert dv.Value.Value == 37.1 and dv.Value.VariantType == ua.VariantType.Double
    assert dv.StatusCode.is_good()
    assert dv.SourceTimestamp == T0 + timedelta(seconds=1 - 90)  # the device's clock, not the gateway's
    assert before <= dv.ServerTimestamp <= datetime.now(UTC)
    assert (await node.read_browse_name()).Name == "temperature"
    assert node.nodeid.Identifier == "gw-suite-3/plant-1/suite-3/isolator-1/CP-1/temperature"  # stable NodeId

    assert await (await node_at(scada, sink.namespace_uri, *CP1, "temperature", "unit")).read_value() == "Cel"
    seq = await (await node_at(scada, sink.namespace_uri, *CP1, "temperature", "seq")).read_value()
    assert seq == batch.records[1]["seq"]
    equipment = await node_at(scada, sink.namespace_uri, *CP1)
    props = {
        p: await (await node_at(scada, sink.namespace_uri, *CP1, p)).read_value()
        for p in ("equipment_class", "lot_id", "process_step")
    }
    assert props == {"equipment_class": "cell_processor", "lot_id": "LOT-0001", "process_step": "expansion"}
    assert {(await c.read_browse_name()).Name for c in await equipment.get_children()} >= {"temperature", "co2"}


async def test_a_later_record_replaces_the_value_and_the_context(
    sink: OpcUaServerSink, source: WireSource, scada: Client
) -> None:
    batch = await source.batch([draft("temperature", 37.4, 10, lot_id="LOT-0002", process_step="harvest")])
    await sink.write(batch)
    dv = await read(scada, await node_at(scada, sink.namespace_uri, *CP1, "temperature"))
    assert dv.Value.Value == 37.4 and dv.SourceTimestamp == T0 + timedelta(seconds=10 - 90)
    assert await (await node_at(scada, sink.namespace_uri, *CP1, "lot_id")).read_value() == "LOT-0002"
    assert await (await node_at(scada, sink.namespace_uri, *CP1, "process_step")).read_value() == "harvest"


async def test_quality_becomes_the_status_code_and_bad_carries_no_value(
    sink: OpcUaServerSink, source: WireSource, scada: Client
) -> None:
    batch = await source.batch(
        [
            draft("ph", 7.1, 20),
            draft("ph", None, 21, quality="Bad_SensorFailure", detail="probe open circuit"),
            draft("do", 140.0, 22, unit="%", quality="Uncertain_EngineeringUnitsExceeded"),
            draft("co2", 5.2, 23, quality="Bad_CommunicationError"),  # a value with a Bad quality is not shown
        ]
    )
    await sink.write(batch)
    ph = await read(scada, await node_at(scada, sink.namespace_uri, *CP1, "ph"))
    assert ph.StatusCode.value == ua.StatusCodes.BadSensorFailure and ph.Value.Value is None
    do = await read(scada, await node_at(scada, sink.namespace_uri, *CP1, "do"))
    assert do.StatusCode.value == ua.StatusCodes.UncertainEngineeringUnitsExceeded and do.Value.Value == 140.0
    co2 = await read(scada, await node_at(scada, sink.namespace_uri, *CP1, "co2"))
    assert co2.StatusCode.value == ua.StatusCodes.BadCommunicationError and co2.Value.Value is None

    await sink.write(await source.batch([draft("ph", 7.0, 24)]))  # the probe is back
    ph = await read(scada, await node_at(scada, sink.namespace_uri, *CP1, "ph"))
    assert ph.StatusCode.is_good() and ph.Value.Value == 7.0


async def test_values_keep_their_types_and_equipment_without_isa95_is_unassigned(
    sink: OpcUaServerSink, source: WireSource, scada: Client
) -> None:
    batch = await source.batch(
        [
            draft("door_open", True, 30, kind="state", unit=None),
            draft("step_number", 3, 31, kind="state", unit=None),
            draft("door_alarm", "DoorOpen active", 32, kind="alarm", unit=None),
            draft(
                "particles_0_5um",
                1200,
                33,
                equipment_id="PC-7",
                equipment_class="particle_counter",
                isa95=None,
                unit="/m3",
                lot_id=None,
                process_step=None,
            ),
            draft("step_number", 4.5, 34, kind="state", unit=None),  # an int parameter may turn float
            draft("door_alarm", 2, 35, kind="alarm", unit=None),  # or a text become a number: the latest wins
        ]
    )
    await sink.write(batch)

    async def value(*path: str) -> ua.Variant:
        return (await read(scada, await node_at(scada, sink.namespace_uri, *path))).Value

    assert await value(*CP1, "door_open") == ua.Variant(True, ua.VariantType.Boolean)
    assert await value(*CP1, "step_number") == ua.Variant(4.5, ua.VariantType.Double)
    assert await value(*CP1, "door_alarm") == ua.Variant(2, ua.VariantType.Int64)
    pc7 = (GATEWAY, "_unassigned", "_unassigned", "_unassigned", "PC-7")
    assert await value(*pc7, "particles_0_5um") == ua.Variant(1200, ua.VariantType.Int64)
    assert await (await node_at(scada, sink.namespace_uri, *pc7, "lot_id")).read_value() is None


async def test_a_client_cannot_write(sink: OpcUaServerSink, scada: Client) -> None:
    node = await node_at(scada, sink.namespace_uri, *CP1, "temperature")
    before = (await read(scada, node)).Value
    with pytest.raises(ua.UaStatusCodeError) as err:
        await node.write_value(ua.DataValue(ua.Variant(99.0, ua.VariantType.Double)))
    assert err.value.code in (ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadNotWritable)
    assert (await read(scada, node)).Value == before
    access = await node.read_attribute(ua.AttributeIds.AccessLevel)
    assert access.Value.Value == ua.AccessLevel.CurrentRead.mask


async def test_the_server_shows_its_generated_certificate(sink: OpcUaServerSink, site: Path) -> None:
    cert, key = site / "pki" / "opcua-server-cert.der", site / "pki" / "opcua-server-key.pem"
    assert cert.is_file() and key.stat().st_mode & 0o077 == 0  # the private key is the gateway's alone
    probe = Client(sink.endpoint_url, timeout=5)
    endpoints = await probe.connect_and_get_server_endpoints()
    assert {e.SecurityPolicyUri.rsplit("#", 1)[1] for e in endpoints} == {"Basic256Sha256"}
    assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
    assert all(e.ServerCertificate == certificate_der(cert) for e in endpoints)


async def test_a_client_without_security_is_refused(sink: OpcUaServerSink) -> None:
    plain = Client(sink.endpoint_url, timeout=5)
    with pytest.raises(Exception) as err:
        await plain.connect()
    await plain.disconnect()
    assert "policy" in str(err.value).lower() or "endpoint" in str(err.value).lower()


async def test_an_untrusted_client_certificate_is_refused_until_the_site_trusts_it(
    sink: OpcUaServerSink, site: Path
) -> None:
    stranger = await _secure_client(sink.endpoint_url, site, "stranger", "urn:someone:else")
    with capture_logs() as logs, pytest.raises(ua.UaStatusCodeError) as err:
        await stranger.connect()
    await stranger.disconnect()
    assert err.value.code == ua.StatusCodes.BadCertificateUntrusted
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert "copy it into trusted_clients_dir" in warning["event"]
    print_ = thumbprint(certificate_der(site / "clients" / "stranger_cert.der"))
    assert warning["thumbprint"] == print_

    shutil.copy(site / "clients" / "stranger_cert.der", site / "pki" / "trusted" / "stranger.der")
    try:
        stranger = await _secure_client(sink.endpoint_url, site, "stranger", "urn:someone:else")
        async with stranger:
            assert await (await node_at(stranger, sink.namespace_uri, *CP1, "temperature")).read_value() == 37.4
    finally:
        (site / "pki" / "trusted" / "stranger.der").unlink()


async def test_another_server_on_the_same_port_is_one_clear_error(sink: OpcUaServerSink, site: Path) -> None:
    port = sink.endpoint_url.split(":")[2].split("/")[0]
    other = plugin.create(_config(site, name="scada2", endpoint=f"opc.tcp://127.0.0.1:{port}/x/"), SinkContext(GATEWAY))
    with pytest.raises(SinkError, match=rf"scada2: cannot listen on opc.tcp://127.0.0.1:{port}/x/ .*choose another"):
        await other.connect()
    assert not other.running
    await other.close()


async def test_close_and_connect_bring_the_same_tree_back(
    sink: OpcUaServerSink, source: WireSource, site: Path
) -> None:
    paths = [(*CP1, p) for p in ("temperature", "ph", "co2", "step_number", "door_alarm", "lot_id", "process_step")]

    async def snapshot() -> list[tuple[object, int, datetime | None]]:
        async with await _secure_client(sink.endpoint_url, site) as client:
            dvs = [await read(client, await node_at(client, sink.namespace_uri, *p)) for p in paths]
        # a property's source time is when it last changed, which a rebuild cannot know: values only there
        return [
            (dv.Value.Value, dv.StatusCode.value, dv.SourceTimestamp if i < 5 else None) for i, dv in enumerate(dvs)
        ]

    before = await snapshot()
    served = thumbprint(certificate_der(site / "pki" / "opcua-server-cert.der"))
    await sink.close()
    await sink.close()  # idempotent
    with pytest.raises(SinkError, match="not running"):
        await sink.write(await source.batch([draft("temperature", 40.0, 40)]))
    await sink.connect()
    await sink.connect()  # idempotent
    assert thumbprint(certificate_der(site / "pki" / "opcua-server-cert.der")) == served  # reused, not replaced
    assert await snapshot() == before
    await sink.write(await source.batch([draft("temperature", 36.8, 41)]))
    async with await _secure_client(sink.endpoint_url, site) as client:
        assert await (await node_at(client, sink.namespace_uri, *CP1, "temperature")).read_value() == 36.8


async def test_after_a_gateway_restart_the_tree_starts_with_the_journals_latest_values(
    source: WireSource, site: Path
) -> None:
    await source.batch([draft("temperature", 37.1, 50), draft("ph", 7.2, 51), draft("temperature", 37.4, 52)])
    fresh = plugin.create(_config(site, name="scada-restarted"), SinkContext(GATEWAY, journal_path=source.path))
    await fresh.connect()
    try:
        async with await _secure_client(fresh.endpoint_url, site) as client:
            temperature = await read(client, await node_at(client, fresh.namespace_uri, *CP1, "temperature"))
            ph = await read(client, await node_at(client, fresh.namespace_uri, *CP1, "ph"))
    finally:
        await fresh.close()
    assert temperature.Value.Value == 37.4 and temperature.SourceTimestamp == (T0 + timedelta(seconds=52 - 90))
    assert ph.Value.Value == 7.2
