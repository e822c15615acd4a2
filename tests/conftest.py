"""Suite-wide fixtures: no test may leave asyncio tasks running."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def _task_leak_check() -> object:
    yield None
    await asyncio.sleep(0)  # let tasks that were just cancelled or finished settle
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    for task in leaked:
        task.cancel()
    if leaked:
        await asyncio.gather(*leaked, return_exceptions=True)
        names = ", ".join(sorted(t.get_name() + ":" + repr(t.get_coro()) for t in leaked))
        pytest.fail(f"the test left {len(leaked)} asyncio task(s) running: {names}")


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Async tests get the leak check; sync tests have no loop to leak into."""
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue("_task_leak_check")
