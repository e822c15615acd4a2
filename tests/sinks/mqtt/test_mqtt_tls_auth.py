"""The MQTT sink against a real Mosquitto over TLS, mutual TLS and with a password file.

The broker's certificate comes from a site CA the system trust store does not know (``pki``), as on a
plant network. Consumers are real aiomqtt clients over the same listener with their own credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from gateway.sinks import SinkError
from tests.mosquitto import Mosquitto, password_file, start_mosquitto
from tests.pki import Pki
from tests.sinks.mqtt.support import WireRecords, batch, make_sink

StartBroker = Callable[..., Mosquitto]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[StartBroker]:
    """``broker(*listener_lines)``: a started Mosquitto of the test's own, stopped at the end."""
    started: list[Mosquitto] = []

    def start(*listener_options: str) -> Mosquitto:
        started.append(start_mosquitto(tmp_path / f"mosquitto-{len(started)}", listener_options))
        return started[-1]

    try:
        yield start
    finally:
        for each in started:
            each.stop()


def tls_listener(pki: Pki) -> list[str]:
    return [f"cafile {pki.ca}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}"]


@contextlib.asynccontextmanager
async def subscribed(broker: Mosquitto, **client: Any) -> AsyncIterator[aiomqtt.Client]:
    """A consumer subscribed to every record topic before the sink publishes."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="tls-auth-consumer", **client) as sub:
        await sub.subscribe("cgt/#", qos=1)
        yield sub


async def received_records(sub: aiomqtt.Client, n: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The next ``n`` record messages (status messages skipped), failing after ``timeout_s``."""
    bodies: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout_s):
        async for message in sub.messages:
            if "/_gateways/" not in str(message.topic):
                bodies.append(orjson.loads(bytes(message.payload)))  # type: ignore[arg-type]
                if len(bodies) == n:
                    return bodies
    raise AssertionError(f"the consumer's connection ended after {len(bodies)} of {n} records")


async def connect_error(**sink: Any) -> str:
    """The one-line SinkError of a failed connect (the sink stays closed and closes cleanly)."""
    target = make_sink(**sink)
    with pytest.raises(SinkError) as caught:
        await target.connect()
    assert not target.connected
    await target.close()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# -- TLS ------------------------------------------------------------------------------------------


async def test_over_tls_with_the_site_ca_as_ca_file_a_batch_is_delivered(
    broker: StartBroker, pki: Pki, wire_records: WireRecords
) -> None:
    mosquitto = broker(*tls_listener(pki))
    records = await wire_records(3)
    async with subscribed(mosquitto, tls_context=pki.client_context()) as sub:
        sink = make_sink(mosquitto, tls=True, ca_file=str(pki.ca))
        await sink.connect()
        try:
            assert await sink.write(batch(records)) is None
        finally:
            await sink.close()
        assert await received_records(sub, 3) == records


async def test_tls_without_ca_file_says_the_certificate_is_not_trusted_and_asks_for_the_ca(
    broker: StartBroker, pki: Pki
) -> None:
    mosquitto = broker(*tls_listener(pki))  # the system CAs do not know the site CA
    message = await connect_error(broker=mosquitto, tls=True)
    assert message == (
        f"MQTT broker 127.0.0.1:{mosquitto.port}: its certificate is not trusted "
        "(self-signed certificate in certificate chain): give its CA as ca_file"
    )


async def test_verify_tls_false_connects_to_an_unknown_certificate_for_commissioning(
    broker: StartBroker, pki: Pki, wire_records: WireRecords
) -> None:
    mosquitto = broker(*tls_listener(pki))
    sink = make_sink(mosquitto, tls=True, verify_tls=False)
    await sink.connect()
    try:
        assert await sink.write(batch(await wire_records(1))) is None
    finally:
        await sink.close()


async def test_plain_mqtt_to_a_tls_port_fails_at_once_and_suggests_tls(broker: StartBroker, pki: Pki) -> None:
    mosquitto = broker(*tls_listener(pki))
    started = asyncio.get_running_loop().time()
    message = await connect_error(broker=mosquitto, connect_timeout_s=5)
    assert asyncio.get_running_loop().time() - started < 2.5  # not the whole connect_timeout_s
    assert message.startswith(f"MQTT broker 127.0.0.1:{mosquitto.port} closed the connection before accepting it: ")
    assert message.endswith("if it expects TLS, set tls: true)")


# -- mutual TLS -----------------------------------------------------------------------------------


async def test_mutual_tls_without_a_client_certificate_fails_at_once_asking_for_one(
    broker: StartBroker, pki: Pki
) -> None:
    mosquitto = broker(*tls_listener(pki), "require_certificate true")
    started = asyncio.get_running_loop().time()
    message = await connect_error(broker=mosquitto, tls=True, ca_file=str(pki.ca), connect_timeout_s=5)
    # With TLS 1.3 the broker's refusal comes after the handshake: the sink must not wait out the timeout.
    assert asyncio.get_running_loop().time() - started < 2.5
    assert message.startswith(f"MQTT broker 127.0.0.1:{mosquitto.port} closed the connection before accepting it: ")
    assert "certificate required" in message
    assert message.endswith("(if the broker requires mutual TLS, give client_cert and client_key)")


async def test_mutual_tls_with_the_client_certificate_as_the_identity_delivers(
    broker: StartBroker, pki: Pki, wire_records: WireRecords
) -> None:
    # No anonymous clients and no password: the certificate's common name is the user name.
    mosquitto = broker(
        *tls_listener(pki), "require_certificate true", "use_identity_as_username true", "allow_anonymous false"
    )
    records = await wire_records(4)
    async with subscribed(mosquitto, tls_context=pki.client_context(with_certificate=True)) as sub:
        sink = make_sink(
            mosquitto, tls=True, ca_file=str(pki.ca), client_cert=str(pki.client_cert), client_key=str(pki.client_key)
        )
        await sink.connect()
        try:
            assert await sink.write(batch(records)) is None
        finally:
            await sink.close()
        assert await received_records(sub, 4) == records


# -- username and password ------------------------------------------------------------------------


@pytest.fixture
def password_broker(broker: StartBroker, tmp_path: Path) -> Mosquitto:
    """No anonymous clients; the gateway and a consumer each with a password in a hashed password file."""
    users = password_file(tmp_path / "passwd", {"gateway": "gw-s3cret pass", "historian": "h1st"})
    return broker("allow_anonymous false", f"password_file {users}")


async def test_the_right_password_from_password_env_delivers(
    password_broker: Mosquitto, wire_records: WireRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNS_PASSWORD", "gw-s3cret pass")
    records = await wire_records(3)
    async with subscribed(password_broker, username="historian", password="h1st") as sub:
        sink = make_sink(password_broker, username="gateway", password_env="UNS_PASSWORD")
        await sink.connect()
        try:
            assert await sink.write(batch(records)) is None
        finally:
            await sink.close()
        assert await received_records(sub, 3) == records


async def test_the_right_password_from_password_file_connects(password_broker: Mosquitto, tmp_path: Path) -> None:
    secret = tmp_path / "uns.password"
    secret.write_text("gw-s3cret pass\n")  # first line only, surrounding blanks and newline dropped
    sink = make_sink(password_broker, username="gateway", password_file=str(secret))
    await sink.connect()
    try:
        assert sink.connected
    finally:
        await sink.close()


@pytest.mark.parametrize("login", [{"password": "wrong"}, {"user": "nobody"}, {}], ids=["wrong", "unknown", "none"])
async def test_a_refused_login_is_one_line_pointing_at_username_and_password(
    password_broker: Mosquitto, login: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNS_PASSWORD", login.get("password", "gw-s3cret pass"))
    fields = {"username": login.get("user", "gateway"), "password_env": "UNS_PASSWORD"} if login else {}
    message = await connect_error(broker=password_broker, **fields)
    assert message == (
        f"MQTT broker 127.0.0.1:{password_broker.port} refused the connection: [code:135] Not authorized "
        "(check username and password_env/password_file, and that the broker lets this user connect)"
    )


async def test_tls_and_password_together(
    broker: StartBroker, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD_VARIABLE", raising=False)
    users = password_file(tmp_path / "passwd", {"gateway": "s3cret"})
    mosquitto = broker(*tls_listener(pki), "allow_anonymous false", f"password_file {users}")
    secret = tmp_path / "uns.password"
    secret.write_text("s3cret\n")
    sink = make_sink(mosquitto, tls=True, ca_file=str(pki.ca), username="gateway", password_file=str(secret))
    await sink.connect()
    try:
        assert sink.connected
    finally:
        await sink.close()
    message = await connect_error(
        broker=mosquitto, tls=True, ca_file=str(pki.ca), username="gateway", password_env="NO_SUCH_PASSWORD_VARIABLE"
    )
    assert message == (
        "uns: environment variable NO_SUCH_PASSWORD_VARIABLE (password_env) is not set or empty: "
        "set it to the broker password"
    )

