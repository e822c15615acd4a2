"""The task-leak check every async test runs (tests/conftest.py), also used by module-scoped loops."""

from __future__ import annotations

import asyncio

import pytest


async def fail_on_leaked_tasks(before: set[asyncio.Task[object]]) -> None:
    """Fail if tasks started since ``before`` are still running after a bounded settle.

    pymodbus finishes a request handler a tick after its socket closes, hence the short wait.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while True:
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
