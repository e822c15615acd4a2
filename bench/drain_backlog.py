"""The drain benchmark's backlog: a real journal of particle-counter readings whose gateway_time advances at
the site rate, and the same records as the forwarder hands them to a sink, prepared before any clock starts."""

from __future__ import annotations

import gc
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.journal import Journal, JournalReader
from gateway.records import Isa95Path, Kind, Quality, RecordDraft
from gateway.sinks.base import WireRecord

EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
CHANNELS = (
    ("particles_0_3um", "/m3"), ("particles_0_5um", "/m3"), ("particles_1_0um", "/m3"),
    ("particles_3_0um", "/m3"), ("particles_5_0um", "/m3"), ("particles_10_0um", "/m3"),
    ("sample_flow", "[ft_i]3/min"), ("laser_current", "mA"),
)
CHUNK = 2000


def draft(i: int, site_rate: int) -> RecordDraft:
    """Reading ``i`` of a site of ``site_rate`` tags at 1 Hz: 8 channels per particle counter."""
    tag = i % site_rate
    counter, channel = divmod(tag, len(CHANNELS))
    parameter, unit = CHANNELS[channel]
    at = EPOCH + timedelta(seconds=i / site_rate)
    return RecordDraft(
        equipment_id=f"PC-{counter:04d}",
        equipment_class="particle_counter",
        isa95=Isa95Path(site="plant-1", area=f"grade-{'bcd'[counter % 3]}", unit=f"suite-{counter % 12 + 1}"),
        parameter=parameter,
        source=f"modbus+tcp://10.0.{counter // 200}.{counter % 200 + 10}:502/1/input/{30001 + 2 * channel}",
        kind=Kind.MEASUREMENT,
        value=float(1000 + i % 7919),
        unit=unit,
        quality=Quality.GOOD,
        source_time=at - timedelta(milliseconds=3),
        gateway_time=at,
        lot_id="LOT-0001",
        config_hash="ab" * 32,
    )


def frame(i: int) -> bytes:
    """A Modbus TCP answer of the size a counter's register read has."""
    return struct.pack(">HHHBBBI", i & 0xFFFF, 0, 7, 1, 4, 4, i & 0xFFFFFFFF)


async def build_backlog(journal: Journal, n: int, site_rate: int) -> None:
    for start in range(0, n, CHUNK):
        await journal.append([(draft(i, site_rate), frame(i)) for i in range(start, min(n, start + CHUNK))])


def wire_records(path: Path) -> list[WireRecord]:
    """The backlog exactly as the forwarder hands it to a sink (every record late: it is a backlog)."""
    with JournalReader(path) as reader:
        return [orjson.loads(p) | {"hash": h, "delivery": {"late": True}} for _, p, _, h in reader.rows(raw=False)]


def untrack() -> None:
    """Keep the prepared backlog out of the garbage collector: a gateway holds one batch, not the whole
    backlog, and full collections over a million bench-held objects would be charged to both loops."""
    gc.collect()
    gc.freeze()
