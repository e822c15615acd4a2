"""Figures for the operator API's README: request latency and reading → live-stream latency.

    .venv/bin/python -m tests.api.bench_api

Runs the test gateway (two fed devices, a real journal at synchronous=full) in a temporary folder.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from gateway import logs
from gateway.records import utc_now
from tests.api.conftest import Site, running_site


async def _latency(site: Site, path: str, n: int = 300) -> tuple[float, float]:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        status, _ = await site.call("GET", path, "vera")
        times.append((time.perf_counter() - began) * 1000)
        assert status == 200
    times.sort()
    return statistics.median(times), times[int(n * 0.99) - 1]


async def _stream_latency(site: Site, n: int = 100) -> tuple[float, float]:
    times = []
    async with site.http.get(site.url + f"/api/stream?token={site.tokens['vera']}") as response:
        await response.content.readuntil(b"\n\n")
        for i in range(n):
            began = time.perf_counter()
            site.plugin.queue("CP-1").put_nowait((1000.0 + i, utc_now()))
            marker = f'"value":{1000.0 + i}'.encode()
            while marker not in await response.content.readuntil(b"\n\n"):
                pass
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[int(n * 0.99) - 1]


async def main() -> None:
    logs.configure("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        async with running_site(Path(tmp)) as site:
            for i in range(200):
                await site.feed("FR-1", float(i))
            for path in ("/api/equipment", "/api/alarms?state=all", "/api/records?limit=100", "/healthz"):
                median, p99 = await _latency(site, path)
                print(f"GET {path:<26} median {median:6.2f} ms   p99 {p99:6.2f} ms")
            async with site.http.get(site.url + "/metrics") as _:
                pass
            began = time.perf_counter()
            for _ in range(300):
                async with site.http.get(site.url + "/metrics") as response:
                    await response.read()
            print(f"GET /metrics                   mean   {(time.perf_counter() - began) / 300 * 1000:6.2f} ms")
            median, p99 = await _stream_latency(site)
            print(f"reading → journal → stream event median {median:6.2f} ms   p99 {p99:6.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
