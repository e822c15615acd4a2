"""Suite-wide fixtures: no test may leave asyncio tasks running."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import pytest_asyncio

from tests.leaks import fail_on_leaked_tasks


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
