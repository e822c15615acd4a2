"""A process that runs a group of simulators for the suite and soak benches, so their CPU is not the gateway's.

    python bench/suite_sims.py GROUP.json      # [{"name": ..., "kind": ..., "options": {...}}, ...]

The entries are the site file's ``simulators:`` entries, started the way the gateway starts them for the
demo (``gateway.simulators.running_simulators``), only in a process of their own. Prints one JSON line,
``{name: {host, port, serial_path, endpoint}}``, once every simulator is up; serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import logs
from gateway.config import SimulatorEntry
from gateway.simulators import running_simulators


async def serve(entries: Sequence[SimulatorEntry]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_simulators(entries) as endpoints:
        sys.stdout.write(json.dumps(endpoints) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: suite_sims.py GROUP.json\n")
        return 2
    entries = [SimulatorEntry.model_validate(e) for e in json.loads(Path(args[0]).read_text())]
    logs.configure("console", "warning")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    try:
        asyncio.run(serve(entries))
    except Exception as exc:  # one line for the bench that started us
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
