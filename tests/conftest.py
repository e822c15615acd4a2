"""Suite-wide fixtures: no test may leave asyncio tasks running."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def _task_leak_check() -> object:
    before = asyncio.all_tasks()
    yield None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while True:  # pymodbus finishes a request handler a tick after its socket closes: bounded settle
        current = asyncio.current_task()
        leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
        if not leaked or loop.time() > deadline:
            break
        await asyncio.sleep(0.01)
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
