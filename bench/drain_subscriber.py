"""The MQTT consumer of the drain benchmark, in its own process as a site's consumer would be.

    python bench/drain_subscriber.py --port 1883

Persistent session (clean_session false), QoS 1, subscribed to ``<prefix>/#``; counts distinct
``(gateway_id, seq)`` of the records, whether a message carries one (``payload: json``) or an array
of them (``json-batch``), as the MQTT sink's README asks of a consumer (status messages carry no seq
and are counted apart).
Prints one JSON line when subscribed, then answers commands read from stdin, one JSON line each:
``count`` (the counters and the monotonic time of the last new record) and ``reset`` (forget all).
Exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time

import aiomqtt
import orjson


class Counter:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seen: set[tuple[str, int]] = set()
        self.messages = 0
        self.other = 0
        self.last_new = 0.0

    def take(self, payload: bytes) -> None:
        self.messages += 1
        try:
            doc = orjson.loads(payload)
            records = doc if type(doc) is list else [doc]
            keys = [(r["gateway_id"], r["seq"]) for r in records]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.other += 1
            return
        before = len(self.seen)
        self.seen.update(keys)
        if len(self.seen) > before:
            self.last_new = time.monotonic()

    def answer(self) -> dict[str, object]:
        return {"distinct": len(self.seen), "messages": self.messages, "other": self.other, "last_new": self.last_new}


async def serve(host: str, port: int, prefix: str, identifier: str) -> None:
    counter = Counter()
    quiet = logging.getLogger("drain-subscriber")
    quiet.setLevel(logging.ERROR)
    async with aiomqtt.Client(host, port, identifier=identifier, clean_session=False, logger=quiet) as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        print(json.dumps({"subscribed": f"{prefix}/#", "client_id": identifier}), flush=True)

        async def consume() -> None:
            async for message in client.messages:
                counter.take(message.payload)  # type: ignore[arg-type]

        async def commands() -> None:
            while line := await asyncio.to_thread(sys.stdin.readline):
                command = line.strip()
                if command == "reset":
                    counter.reset()
                    print(json.dumps({"reset": True}), flush=True)
                elif command == "count":
                    print(json.dumps(counter.answer()), flush=True)
                else:
                    print(json.dumps({"error": f"unknown command {command!r}: count or reset"}), flush=True)

        consumer = asyncio.create_task(consume())
        try:
            await commands()
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", default="cgt", help="topic prefix; subscribes <prefix>/#")
    p.add_argument("--client-id", default="cgt-bench-drain-subscriber")
    args = p.parse_args()
    asyncio.run(serve(args.host, args.port, args.prefix, args.client_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
