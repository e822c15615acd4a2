"""Operator steps from outside the gateway: its command line run against the case's site file, and a
request to its operator API as a user with a token would make it. A refusal (a non-zero exit, a 4xx/5xx
answer) is a :class:`~gateway.qualify.oq.steps.errors.StepRefused` with its one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from gateway.qualify.oq.filters import RecordFilter
from gateway.qualify.oq.steps.errors import StepFailed, StepRefused
from gateway.qualify.oq.timeline import ApiCall, Cli
from gateway.runtime import RunningGateway


async def run_cli(cli: Cli, site: Path, work_dir: Path) -> str:
    """``cgt-gateway ARGS`` with ``{site}`` and ``{work}`` filled; its last line of output."""
    args = [a.replace("{site}", str(site)).replace("{work}", str(work_dir)) for a in cli.args]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), cli.timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise StepFailed(f"cgt-gateway {' '.join(cli.args)} did not finish within {cli.timeout_s:g} s") from None
    lines = err.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0:
        said = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
        raise StepRefused(f"exit status {proc.returncode}: {said or '(no output)'}")
    shown = out.decode(errors="replace").strip().splitlines() or lines  # some commands report on stderr
    return f"cgt-gateway {' '.join(cli.args)}: exit 0{': ' + shown[-1] if shown else ''}"


async def call_api(running: RunningGateway | None, call: ApiCall,
                   records: Callable[[], list[dict[str, Any]]]) -> str:
    """The request, ``{seq}`` in its path being the newest of ``records()`` matching ``seq_of``."""
    api = running.api if running is not None else None
    if api is None:
        raise StepFailed("api needs the gateway running in-process with an api: section")
    path = call.path
    if "{seq}" in path:
        want = call.seq_of or RecordFilter()
        hits = [r["seq"] for r in await asyncio.to_thread(records) if want.matches(r)]
        if not hits:
            raise StepFailed(f"no record {want.model_dump(exclude_none=True)} for {{seq}} in {path}")
        path = path.replace("{seq}", str(hits[-1]))
    headers = {}
    if call.token is not None:
        headers["Authorization"] = f"Bearer {call.token}"
    if call.verifier_token is not None:
        headers["X-Verifier-Token"] = call.verifier_token
    async with aiohttp.ClientSession() as session, session.request(
        call.method, api.url + path, json=call.body, headers=headers, timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        text = await response.text()
    if response.status >= 400:
        try:
            error = orjson.loads(text).get("error", text)
        except orjson.JSONDecodeError:
            error = text
        raise StepRefused(f"{call.method} {path}: {response.status} {error}")
    return f"{call.method} {path}: {response.status} {text[:200]}"
