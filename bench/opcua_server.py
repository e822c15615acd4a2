"""A plain asyncua server for benchmarks: N Double variables rewritten round-robin as fast as asked.

    python bench/opcua_server.py --items 1000 --rate 20000     # prints {"endpoint": ..., "port": ...}
    python bench/opcua_server.py --items 1000 --rate 5000 --stamp   # each write carries a SourceTimestamp

Runs in its own process so the gateway's CPU is measured alone. Values change on every write, so
every write is one data change a subscriber can be told about. With ``--stamp`` each write carries the
host clock as its SourceTimestamp (the latency benchmark's start point); without it none, as before, so
the throughput figures do not pay for stamping or the gateway's clock comparison.
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
from datetime import UTC, datetime

from asyncua import Server, ua

NAMESPACE = "urn:cgt-gateway:bench"


async def serve(items: int, rate: float, stamp: bool = False) -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/bench/")
    idx = await server.register_namespace(NAMESPACE)
    folder = await server.nodes.objects.add_object(idx, "Bench")
    nodes = [await folder.add_variable(ua.NodeId(f"v{i}", idx), f"v{i}", 0.0) for i in range(items)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        port = server.bserver.port
        print(json.dumps({"endpoint": f"opc.tcp://127.0.0.1:{port}/bench/", "port": port}), flush=True)
        writer = asyncio.create_task(_write(server, [n.nodeid for n in nodes], rate, stamp))
        await stop.wait()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def _write(server: Server, ids: Sequence[ua.NodeId], rate: float, stamp: bool) -> None:
    """Rewrite the variables round-robin in bursts of up to 100, paced to ``rate`` writes/s; with ``stamp``
    each write carries the host clock at that write as its SourceTimestamp."""
    loop = asyncio.get_running_loop()
    value, burst, start = 0.0, min(100, len(ids)), loop.time()
    written = 0
    while True:
        for _ in range(burst):
            value += 1.0
            node = ids[written % len(ids)]
            variant = ua.Variant(value, ua.VariantType.Double)
            data = ua.DataValue(variant, SourceTimestamp=datetime.now(UTC)) if stamp else ua.DataValue(variant)
            await server.write_attribute_value(node, data)
            written += 1
        ahead = written / rate - (loop.time() - start)
        await asyncio.sleep(max(ahead, 0))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100, help="number of variables")
    p.add_argument("--rate", type=float, default=10_000, help="value writes per second, all variables together")
    p.add_argument("--stamp", action="store_true", help="stamp each write with the host clock as SourceTimestamp")
    args = p.parse_args(argv)
    asyncio.run(serve(args.items, args.rate, args.stamp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
