"""The end-to-end fuzz tests' harness (no tests here): the real gateway process reading a steady counter
beside the device under fuzz, and what every such run must show afterwards.

The steady counter (Modbus TCP, straight to its simulator) counts 1, 2, 3… in every channel, so a gap or
a repeat in its stream shows; the gateway runs from its command line with the reliability suite's
short backoff, and ``verify`` checks the journal at the end.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from device_sims.particle_counter import ParticleCounterSim
from gateway.journal import JournalReader
from gateway.records import ProcessRecord
from tests.reliability.gatewayproc import (
    GatewayProcess,
    assert_consecutive,
    communication_events,
    counter,
    counts_of,
    records,
    script_counts,
    verify_ok,
    write_site,
)

STEADY = "PC-1"


@dataclass
class Run:
    gw: GatewayProcess
    journal: Path
    site: Path

    def of(self, equipment_id: str) -> list[ProcessRecord]:
        return records(self.journal, equipment_id)


def with_raw(journal: Path, equipment_id: str) -> list[tuple[ProcessRecord, bytes | None]]:
    """One device's committed records with the raw bytes kept beside each, in seq order."""
    with JournalReader(journal) as reader:
        return [(r, raw) for r, raw in reader.read_raw() if r.equipment_id == equipment_id]


@contextlib.asynccontextmanager
async def beside_a_steady_counter(
    tmp_path: Path, gateway_id: str, fuzzed: str, rng: random.Random
) -> AsyncIterator[Run]:
    """The gateway reading ``fuzzed`` (one ``equipment:`` entry) and a steady counter; on a clean exit of
    the block: a clean stop, ``verify``, and the steady counter's stream whole."""
    journal = tmp_path / "journal.sqlite"
    async with ParticleCounterSim(sample_time_s=0.1, seed=rng.randrange(1000)) as steady:
        script_counts(steady, 2000)
        site = write_site(tmp_path, gateway_id, [counter(STEADY, steady.port), fuzzed])
        gw = GatewayProcess(site, journal)
        try:
            await gw.start()
            yield Run(gw, journal, site)
            gw.alive()
            assert await gw.stop() == 0, gw.log_tail()
        finally:
            await gw.close()
    await verify_ok(site)
    steady_records = records(journal, STEADY)
    assert communication_events(steady_records) == [], "the steady counter noticed the fuzzed device"
    assert_consecutive(counts_of(steady_records), "the steady counter's counts")
    plain = gw.plain_lines()
    assert not [line for line in plain if "Traceback" in line], "\n".join(plain[-40:])
    assert not [e for e in gw.log_events() if e.get("event") == "device lost" and e.get("equipment_id") == STEADY]
