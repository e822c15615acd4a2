"""From blocks of registers to a ReadingBatch: cut, decode, judge status, stamp times.

Work is split by cost: everything that depends only on the map (blocks, decoders, source URIs, which
status bit touches which point) is compiled once in :class:`PointReader` and :class:`BatchBuilder`;
a read does one request per block, plain int/struct decoding per point and one RawReading per point.
A point that does not decode becomes a Bad_DecodingError reading with the reason; it never fails the
batch, because the other points of the same read are still true.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.modbus.blocks import Block
from adapters.modbus.bus import ModbusBus
from adapters.modbus.decode import Decoder, alarm_bits, decoder_for
from adapters.modbus.registermap import BIT_TABLES, ModbusPoint, RegisterMap
from gateway.errors import DecodeError
from gateway.records import Quality, RawReading, ReadingBatch, utc_from_timestamp

_GOOD = Quality.GOOD


@dataclass(slots=True)
class Decoded:
    """One point of one read, before status and expectations are applied."""

    value: Any
    quality: Quality
    detail: str | None
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Cut:
    """Where one point sits in its block's bytes, and its decoder."""

    name: str
    start: int
    end: int
    decode: Decoder


class PointReader:
    """Reads a fixed list of blocks of one device and decodes every point in them."""

    def __init__(self, blocks: Sequence[Block], register_map: RegisterMap, *, device_id: int, equipment_id: str):
        self.blocks = tuple(blocks)
        self.device_id = device_id
        self.equipment_id = equipment_id
        self._plan = [
            (b, b.table in BIT_TABLES, tuple(cut_point(p, b, register_map) for p in b.points)) for b in self.blocks
        ]

    @property
    def point_names(self) -> list[str]:
        return [p.name for b in self.blocks for p in b.points]

    async def read(self, bus: ModbusBus, into: dict[str, Decoded] | None = None) -> dict[str, Decoded]:
        """One request per block; DeviceError if a request fails (the whole read then failed)."""
        out: dict[str, Decoded] = {} if into is None else into
        for block, bits, cuts in self._plan:
            data = await bus.read(
                block.table, block.address, block.count, device_id=self.device_id, equipment_id=self.equipment_id
            )
            decode_block(data, cuts, out, bits=bits)
        return out


def decode_block(data: Sequence[Any], cuts: Sequence[_Cut], out: dict[str, Decoded], *, bits: bool = False) -> None:
    """Decode each point of one block's answer into ``out``. Pure.

    The block is turned into its wire bytes once; each point is a slice of them (kept as ``raw``)
    handed to its decoder.
    """
    buf = bytes(1 if b else 0 for b in data) if bits else struct.pack(f">{len(data)}H", *data)
    for c in cuts:
        raw = buf[c.start : c.end]
        try:
            out[c.name] = Decoded(c.decode(raw), _GOOD, None, raw)
        except DecodeError as exc:
            out[c.name] = Decoded(None, Quality.BAD_DECODING_ERROR, str(exc), raw)


def cut_point(point: ModbusPoint, block: Block, register_map: RegisterMap) -> _Cut:
    """Compile one point of a block: its byte range in the block and its decoder."""
    size = 1 if point.table in BIT_TABLES else 2
    start = (point.address - block.address) * size
    if point.type == "float32":
        order = point.word_order or register_map.float_word_order or register_map.word_order
    else:
        order = point.word_order or register_map.word_order
    decode = decoder_for(
        point.type, table=point.table, word_order=order, count=point.count,
        bit=point.bit, width=point.width, invert=point.invert,
    )
    return _Cut(point.name, start, start + point.span * size, decode)


def point_source(endpoint: str, device_id: int, point: ModbusPoint) -> str:
    """``modbus+tcp://127.0.0.1:5020/1/input/8``: bus, unit id, table, 0-based protocol address."""
    return f"{endpoint}/{device_id}/{point.table}/{point.address}"


class BatchBuilder:
    """Applies the map's status words and expectations and turns decoded points into a batch."""

    def __init__(self, register_map: RegisterMap, *, endpoint: str, device_id: int, equipment_id: str) -> None:
        self.equipment_id = equipment_id
        self.sources = {n: point_source(endpoint, device_id, p) for n, p in register_map.points.items()}
        self.time_point = register_map.source_time.point if register_map.source_time else None
        self.status = [
            (s.point, s.polarity == "active_good", {b.bit: b for b in s.bits}) for s in register_map.status
        ]
        self.expect = list(register_map.expect)
        #: Points outside the sample (a record mode's control registers): current values, no sample time.
        self.untimed: frozenset[str] = frozenset()

    def judge(self, decoded: dict[str, Decoded]) -> dict[str, tuple[Quality, str]]:
        """Quality and reason per point lowered by an active status alarm or an unmet expectation. Pure."""
        lowered: dict[str, tuple[Quality, str]] = {}

        def lower(name: str, quality: Quality, why: str) -> None:
            if name not in decoded:
                return
            if name in lowered:
                q, d = lowered[name]
                lowered[name] = (q.worst(quality), f"{d}; {why}")
            else:
                lowered[name] = (quality, why)

        for point, active_good, bits in self.status:
            word = decoded.get(point)
            if word is None:
                continue
            if not isinstance(word.value, int):
                for b in bits.values():
                    for name in b.points:
                        lower(name, Quality.UNCERTAIN, f"status word {point} did not decode")
                continue
            for n in alarm_bits(word.value, bits, active_good=active_good):
                b = bits[n]
                why = f"{b.label} ({point} bit {n})"
                lower(point, b.quality, why)
                for name in b.points:
                    lower(name, b.quality, why)
        for e in self.expect:
            setting = decoded.get(e.point)
            if setting is None:
                continue
            if setting.value != e.value:
                why = f"{e.label}: {e.point} reads {setting.value}, the map assumes {e.value}"
                quality = e.quality if setting.value is not None else Quality.UNCERTAIN
                for name in e.points:
                    lower(name, quality, why)
        return lowered

    def source_time(self, decoded: dict[str, Decoded]) -> datetime | None:
        """The device's sample time, when the map names it and it decoded to a representable time."""
        if self.time_point is None:
            return None
        item = decoded.get(self.time_point)
        if item is None or not isinstance(item.value, int):
            return None
        try:
            return utc_from_timestamp(item.value)
        except (OverflowError, OSError, ValueError):
            return None

    def build(
        self,
        decoded: dict[str, Decoded],
        gateway_time: datetime,
        *,
        events: list[tuple[str, str]] | None = None,
        token: Any = None,
    ) -> ReadingBatch:
        lowered = self.judge(decoded) if (self.status or self.expect) else {}
        source_time = self.source_time(decoded)
        eq, sources, untimed = self.equipment_id, self.sources, self.untimed
        readings = []
        for name, d in decoded.items():
            quality, detail = d.quality, d.detail
            if name in lowered:
                q, why = lowered[name]
                quality = quality.worst(q)
                detail = f"{detail}; {why}" if detail else why
            readings.append(RawReading(
                eq, name, sources[name], d.value, gateway_time, quality,
                None if name in untimed else source_time, d.raw, detail,
            ))
        return ReadingBatch(eq, readings, token=token, events=list(events or ()))
