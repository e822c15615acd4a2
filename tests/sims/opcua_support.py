"""Helpers for the closed-processor tests: browse paths resolved by namespace URI, and a module-loop leak check.

Browse paths are written out here from the layout spec, independently of the simulator's `nodes` module,
so a renamed node in the simulator shows up as a failing test rather than being mirrored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from asyncua import Client, Node

from tests.leaks import fail_on_leaked_tasks

NS_URI = "urn:cgt-gateway:sim:closed-processor"
BIOREACTOR = "DeviceSet/ClosedProcessor/FunctionalUnitSet/Bioreactor"


async def resolve(client: Client, path: str) -> Node:
    """The node at a `/`-separated browse path below Objects, each segment in the simulator's namespace."""
    idx = await client.get_namespace_index(NS_URI)
    return await client.nodes.objects.get_child([f"{idx}:{segment}" for segment in path.split("/")])


async def read(client: Client, path: str) -> object:
    return await (await resolve(client, path)).read_value()


async def check_no_leaked_tasks() -> AsyncIterator[None]:
    """The suite's leak check, for tests that run on a module-scoped loop (see tests/conftest.py)."""
    before = asyncio.all_tasks()
    yield None
    await fail_on_leaked_tasks(before)
