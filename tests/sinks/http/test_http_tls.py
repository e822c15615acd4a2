"""HTTPS to the MES: a site CA the system does not trust, the CA given as ca_file, and mutual TLS."""

from __future__ import annotations

import pytest

from device_sims.mes import MesStandIn
from gateway.sinks import SinkError
from tests.pki import Pki

from .support import GATEWAY_ID, MakeRecords, MakeSink, batch_of, connected


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
    with pytest.raises(SinkError, match=r"^mes: cannot load client_cert \S+client.crt with client_key \S+server.key: "):
        await sink.connect()
    await sink.close()
