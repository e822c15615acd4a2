"""A plain pymodbus TCP server for benchmarks: unit 1 holding N registers from address 0.

    python bench/modbus_server.py --registers 100     # prints {"endpoint": ..., "port": ...}

The particle-counter simulators cannot answer one read of 100 registers from address 0 (their maps have
holes), so the peer comparison reads this instead. Runs in its own process so each peer's CPU is
measured alone. The registers change ten times a second, so readers see moving values, not a constant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FC_WRITE_REGISTERS = 16


async def serve(registers: int, refresh_s: float) -> None:
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    device = SimDevice(id=1, simdata=[SimData(address=0, count=registers, values=0, datatype=DataType.REGISTERS)])
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"endpoint": f"modbus+tcp://127.0.0.1:{port}", "port": port, "registers": registers}), flush=True)
    writer = asyncio.create_task(_refresh(server, registers, refresh_s))
    try:
        await stop.wait()
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await server.shutdown()


async def _refresh(server: ModbusTcpServer, registers: int, every_s: float) -> None:
    """Register i holds (tick + i) mod 65536: every register moves on every refresh."""
    tick = 0
    while True:
        values = [(tick + i) % 65536 for i in range(registers)]
        await server.context.async_setValues(1, FC_WRITE_REGISTERS, 0, values)  # type: ignore[union-attr]
        tick += 1
        await asyncio.sleep(every_s)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--registers", type=int, default=100, help="holding registers 0..N-1 (at most 125 per read)")
    p.add_argument("--refresh-s", type=float, default=0.1, help="seconds between register updates")
    args = p.parse_args(argv)
    asyncio.run(serve(args.registers, args.refresh_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
