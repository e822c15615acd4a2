"""Suite-wide fixtures: no test may leave asyncio tasks running; a real Mosquitto; a site PKI."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.leaks import fail_on_leaked_tasks
from tests.mosquitto import Mosquitto, start_mosquitto
from tests.pki import Pki, make_pki


@pytest_asyncio.fixture
async def _task_leak_check() -> object:
    before = asyncio.all_tasks()
    yield None
    await fail_on_leaked_tasks(before)


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Async tests get the leak check; sync tests have no loop to leak into."""
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue("_task_leak_check")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto broker of the test's own, configured as the MQTT sink's README asks of a site."""
    broker = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A site CA (unknown to the system trust store) with a server certificate for 127.0.0.1 and a client one."""
    return make_pki(tmp_path_factory.mktemp("pki"))
