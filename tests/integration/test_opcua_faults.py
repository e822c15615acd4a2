"""A restarted server: the adapter reports the dead session within bounds, never spins, and a new adapter
(what the supervisor builds) resumes with one session on the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua.client.ua_client import UaClient
from asyncua.client.ua_session import UaSession

from gateway.errors import CommunicationError
from tests.integration.test_opcua_support import BR, Consumer, LadsServer, equipment


@pytest_asyncio.fixture
async def server() -> AsyncIterator[LadsServer]:
    srv = LadsServer()
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_server_restart_is_reported_then_resumed_without_spinning(
    server: LadsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"publish": 0, "republish": 0, "transfer": 0}
    for cls, name, key in (
        (UaClient, "publish", "publish"),
        (UaSession, "republish", "republish"),
        (UaClient, "transfer_subscriptions", "transfer"),
    ):
        original = getattr(cls, name)

        def counted(*args: object, _orig=original, _key=key, **kwargs: object):  # type: ignore[no-untyped-def]
            calls[_key] += 1
            return _orig(*args, **kwargs)

        monkeypatch.setattr(cls, name, counted)

    eq = equipment(server, watchdog_interval_s=0.5, timeout_s=1.0)
    consumer = Consumer(eq)
    sessions: list[int] = []
    loop = asyncio.get_running_loop()
    marks: dict[str, float] = {}

    async def watch_sessions() -> None:
        while True:
            if server.server is not None:
                sessions.append(server.sessions())
            await asyncio.sleep(0.05)

    async def restart_when_flowing() -> None:
        while not consumer.batches:  # noqa: ASYNC110 - the consumer has no event to wait on
            await asyncio.sleep(0.02)
        await server.stop()
        marks["stopped"] = loop.time()
        marks["publish_at_stop"] = calls["publish"]
        await asyncio.sleep(2.0)  # an outage long enough for several watchdog rounds
        marks["publish_in_outage"] = calls["publish"] - marks["publish_at_stop"]
        await server.start()  # same port: the endpoint in the equipment entry stays valid
        marks["restarted"] = loop.time()
        await server.set(f"{BR}/FunctionSet/Temperature/CurrentValue", 38.5)

    def resumed(c: Consumer) -> bool:
        return "restarted" in marks and any(r.value == 38.5 for r in c.readings("temperature"))

    async with asyncio.TaskGroup() as tg:
        watcher = tg.create_task(watch_sessions())
        restarter = tg.create_task(restart_when_flowing())
        await consumer.run_until(resumed, timeout_s=20)
        await restarter
        watcher.cancel()

    first_error_at, first_error = consumer.errors[0]
    assert isinstance(first_error, CommunicationError)
    assert "CP-1" in str(first_error) and server.endpoint in str(first_error)
    # a dead session is noticed within the watchdog interval plus one request timeout (and some slack)
    assert first_error_at - marks["stopped"] <= eq.watchdog_interval_s + eq.timeout_s + 1.0
    assert consumer.connects >= 2
    assert max(sessions) <= 1, "the adapter left a session behind across the reconnect"
    # asyncua's own recovery never ran: no TransferSubscriptions, no Republish gap filling
    assert calls["republish"] == 0 and calls["transfer"] == 0
    assert marks["publish_in_outage"] <= 5, f"publish requests kept going during the outage: {calls}"
    await asyncio.sleep(0.3)
    assert server.sessions() == 0


async def test_a_queue_overflow_ends_the_session_instead_of_dropping_silently(server: LadsServer) -> None:
    from adapters.opcua import plugin
    from gateway.adapter import SharedResources

    eq = equipment(server, queue_maxsize=10)
    path = f"{BR}/FunctionSet/Temperature/CurrentValue"
    delivered: list[float] = []
    with pytest.raises(CommunicationError, match="notification queue overflowed") as err:
        async with asyncio.timeout(10), plugin.create(eq, SharedResources()) as adapter:
            async for batch in adapter.batches():
                delivered += [r.value for r in batch.readings if r.point == "temperature"]
                if delivered and delivered[-1] == 36.9:  # the initial value: now fall behind on purpose
                    for i in range(60):
                        await server.set(path, 30.0 + i / 10)
                        await asyncio.sleep(0.005)
                    await asyncio.sleep(0.5)
    assert "CP-1" in str(err.value)
    assert len(delivered) > 1, "what was queued before the overflow must still be delivered"


async def test_a_frozen_server_is_noticed_by_the_keep_alive_watchdog(server: LadsServer) -> None:
    """The socket stays open but the server answers nothing (a hung PLC): no FIN ever comes."""
    eq = equipment(server, watchdog_interval_s=0.5, timeout_s=1.0)
    consumer = Consumer(eq)
    loop = asyncio.get_running_loop()
    frozen: list[float] = []

    def done(c: Consumer) -> bool:
        if c.batches and not frozen:
            assert server.server is not None
            for transport in server.server.iserver.asyncio_transports:
                transport.pause_reading()
            frozen.append(loop.time())
        return bool(c.errors)

    await consumer.run_until(done, timeout_s=10)
    at, error = consumer.errors[0]
    assert isinstance(error, CommunicationError) and "session lost" in str(error)
    # the probe runs every watchdog interval and waits at most that long for its answer
    assert at - frozen[0] <= 2 * eq.watchdog_interval_s + eq.timeout_s + 1.0
    assert server.server is not None
    for transport in server.server.iserver.asyncio_transports:
        transport.resume_reading()
