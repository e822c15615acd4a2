"""The Modbus adapter's decode path without a socket, for the fuzzers (no tests here).

Registers: the real :class:`ModbusAdapter` of a map (the three shipped maps and ``every-type.yaml``)
polls through its own acquisition mode, readers, decoders and batch builder, with a register bank in
place of its bus: every word the bank answers is drawn (edges of 16 and 32 bits, NaN and infinity
patterns, denormals, random words), and now and then a read fails the way the real bus reports a
malformed, short or exception answer (a gateway error). Batches go through the real pipeline
(normalise, the particle concentrations) and the journal's payload encoding.

Wire: responses as pymodbus's client frames and decodes them (``handleFrame`` of the socket and RTU
framers, with the request's unit and transaction id), then the adapter's own ``check_response``.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse, WriteSingleCoilResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    WriteSingleRegisterResponse,
)

from adapters.modbus import ModbusEquipmentConfig, plugin
from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.registermap import ModbusPoint, RegisterMap
from gateway.adapter import SharedResources
from gateway.errors import CommunicationError, DeviceError, DeviceReportedError, ProtocolError
from gateway.journal._chain import draft_body, encode_payload
from gateway.pipeline import Entry, EquipmentPipeline
from gateway.records import Quality, RawReading, ReadingBatch
from tests.reliability.fuzz.mutations import run

EVERY_TYPE = Path(__file__).with_name("every-type.yaml")


def _equipment(register_map: str) -> ModbusEquipmentConfig:
    return ModbusEquipmentConfig.model_validate(
        {"id": "PC-F", "class": "particle_counter", "kind": "modbus", "transport": "tcp", "host": "127.0.0.1",
         "port": 502, "device_id": 1, "register_map": register_map}
    )  # fmt: skip


EQUIPMENT = [_equipment(m) for m in ("lighthouse-remote", "metone-6000", "pms-airnet2", str(EVERY_TYPE))]
MAPS: list[RegisterMap] = [plugin.device_map(eq) for eq in EQUIPMENT]

#: Words worth drawing often: 16- and 32-bit edges, the high words of NaN, infinity, the largest and
#: smallest floats and denormals, ASCII text, one.
EDGES = (0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0xFFFE, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F7F, 0x0080,
         0x0001, 0x3F80, 0x4E6E, 0x4141, 0x00FF, 0xFF00)  # fmt: skip


def word(rnd: random.Random) -> int:
    return rnd.choice(EDGES) if rnd.random() < 0.6 else rnd.randrange(0x10000)


# -- the register bank in place of the bus -----------------------------------------------------------
@dataclass
class BankBus:
    """Answers each read with drawn words (the same word for a register within one poll); a read fails
    now and then with the error the real bus raises for a bad answer. Record counts mostly move on by a
    few, so the record modes catch up, wrap and restart rather than always jumping."""

    rnd: random.Random
    fail_rate: float = 0.05
    counters: frozenset[tuple[str, int]] = frozenset()
    bank: dict[tuple[str, int], int] = field(default_factory=dict)
    last: dict[tuple[str, int], int] = field(default_factory=dict)
    writes: list[tuple[str, int, int]] = field(default_factory=list)
    reads: int = 0

    def next_poll(self) -> None:
        self.bank.clear()

    def _word(self, table: str, address: int) -> int:
        key = (table, address)
        if key not in self.bank:
            if key in self.counters and key in self.last and self.rnd.random() < 0.9:
                self.bank[key] = max(0, min(0xFFFF, self.last[key] + self.rnd.randint(-1, 4)))
            else:
                self.bank[key] = word(self.rnd)
            self.last[key] = self.bank[key]
        return self.bank[key]

    def _maybe_fail(self, where: str) -> None:
        if self.rnd.random() >= self.fail_rate:
            return
        error = self.rnd.choice((
            ProtocolError("asked for 4 registers, got 3", equipment_id="PC-F", address=where),
            DeviceReportedError("device answered Modbus exception 2", code=2, equipment_id="PC-F", address=where),
            CommunicationError("no answer within 1.0 s", equipment_id="PC-F", address=where),
        ))  # fmt: skip
        raise error

    async def read(self, table: str, address: int, count: int, *, device_id: int, equipment_id: str) -> list[Any]:
        self.reads += 1
        self._maybe_fail(f"{table}/{address}+{count}")
        words = [self._word(table, address + i) for i in range(count)]
        return [bool(w & 1) for w in words] if table in ("coil", "discrete") else words

    async def write_register(self, address: int, value: int, *, device_id: int, equipment_id: str) -> None:
        assert -0x8000 <= value <= 0xFFFF, f"a register write of {value} does not fit 16 bits"
        self._maybe_fail(f"holding/{address}")
        self.writes.append(("holding", address, value))

    async def write_coil(self, address: int, value: bool, *, device_id: int, equipment_id: str) -> None:
        self._maybe_fail(f"coil/{address}")
        self.writes.append(("coil", address, int(value)))


@dataclass
class Polled:
    batches: list[tuple[ReadingBatch, list[Entry]]]
    errors: list[DeviceError]
    bus: BankBus


def poll(which: int, rnd: random.Random, polls: int) -> Polled:
    """The adapter of map ``which``: connect (its mode's writes) then ``polls`` polls, each batch
    committed and acknowledged (queue mode pops), a failed poll's error kept as the supervisor sees it."""
    eq, rmap = EQUIPMENT[which], MAPS[which]
    ad = ModbusAdapter(eq, rmap, SharedResources())
    acq = rmap.acquisition
    counters = {(rmap.points[p].table, rmap.points[p].address)
                for p in (getattr(acq, "record_count_point", None),) if p is not None}  # fmt: skip
    bus = BankBus(rnd, counters=frozenset(counters))
    ad._bus = bus  # type: ignore[assignment]
    pipeline = EquipmentPipeline(eq, rmap, "f" * 64)
    out = Polled([], [], bus)
    try:
        run(ad._mode.on_connect())
    except DeviceError as exc:
        out.errors.append(exc)
    for _ in range(polls):
        bus.next_poll()
        cycle = ad.poll()
        try:
            while True:
                try:
                    batch = run(cycle.__anext__())
                except StopAsyncIteration:
                    break
                drafts = pipeline.process(batch)
                for draft, raw in drafts:
                    encode_payload(draft_body(draft, raw))
                out.batches.append((batch, drafts))
                if rnd.random() < 0.8:  # committed (else the supervisor lost it: not acknowledged)
                    run(ad.acknowledge(batch))
        except DeviceError as exc:
            out.errors.append(exc)
            try:  # the supervisor reconnects: the mode selects again
                run(ad._mode.on_connect())
            except DeviceError as again:
                out.errors.append(again)
        finally:
            run(cycle.aclose())
    return out


# -- an independent decode, to judge each reading ---------------------------------------------------
def _order(point: ModbusPoint, rmap: RegisterMap) -> str:
    if point.word_order is not None:
        return point.word_order
    return (rmap.float_word_order or rmap.word_order) if point.type == "float32" else rmap.word_order


def expected(point: ModbusPoint, rmap: RegisterMap, raw: bytes) -> tuple[str, Any]:
    """("value", v) a reading of ``raw`` must carry, or ("bad", why) when no value can come of it."""
    if point.table in ("coil", "discrete"):
        return "value", bool(raw[0]) is not point.invert
    wire = raw[2:4] + raw[0:2] if point.span == 2 and _order(point, rmap) == "little" else raw
    if point.type == "float32":
        value = struct.unpack(">f", wire)[0]
        return ("value", value) if math.isfinite(value) else ("bad", "not a number")
    if point.type == "string":
        text = raw.split(b"\x00", 1)[0]
        return ("value", text.decode()) if text.isascii() else ("bad", "not ASCII")
    n = int.from_bytes(wire, "big", signed=point.type in ("int16", "int32"))
    if point.type == "bool":
        return "value", bool((n >> (point.bit or 0)) & 1) is not point.invert
    if point.bit is not None:
        return "value", (n >> point.bit) & ((1 << (point.width or 1)) - 1)
    return "value", n


def judge(reading: RawReading, rmap: RegisterMap) -> str | None:
    """What is wrong with one reading, or None."""
    point = rmap.points[reading.point]
    size = 1 if point.table in ("coil", "discrete") else 2 * point.span
    assert reading.raw is not None and len(reading.raw) == size, f"{reading.point}: {reading.raw!r}"
    kind, value = expected(point, rmap, reading.raw)
    if kind == "bad":
        if reading.value is not None or reading.quality != Quality.BAD_DECODING_ERROR or not reading.detail:
            return f"{reading.point}: {reading.raw.hex()} is {value}, yet read {reading.value!r} {reading.quality}"
        return None
    if point.type == "float32":
        if reading.value is None or struct.pack(">f", reading.value) != struct.pack(">f", value):
            return f"{reading.point}: float32 {reading.raw.hex()} is {value}, read {reading.value!r}"
        return None
    if reading.value != value or type(reading.value) is not type(value):
        return f"{reading.point}: {reading.raw.hex()} is {value!r}, read {reading.value!r}"
    return None


# -- responses on the wire -------------------------------------------------------------------------
#: Requests of the kinds the adapter makes: (function code, count).
REQUESTS = ((3, 1), (3, 10), (3, 25), (4, 2), (4, 60), (4, 125), (1, 8), (2, 1), (2, 13), (6, 1), (5, 1))
UNIT = 1


def response(fc: int, count: int, rnd: random.Random, tid: int) -> tuple[ModbusPDU, list[Any]]:
    """A right answer to a request, and the values it carries."""
    if fc in (3, 4):
        regs = [word(rnd) for _ in range(count)]
        cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
        return cls(registers=regs, dev_id=UNIT, transaction_id=tid), regs
    if fc in (1, 2):
        bits = [rnd.random() < 0.5 for _ in range(count)]
        cls2 = ReadCoilsResponse if fc == 1 else ReadDiscreteInputsResponse
        return cls2(bits=bits, dev_id=UNIT, transaction_id=tid), bits
    if fc == 6:
        echo = WriteSingleRegisterResponse(address=24, registers=[0xFFFF], dev_id=UNIT, transaction_id=tid)
        return echo, [24, 0xFFFF]
    return WriteSingleCoilResponse(address=1, bits=[False], dev_id=UNIT, transaction_id=tid), [1, False]


def exception_frame(framer: FramerSocket | FramerRTU, fc: int, code: int, tid: int) -> bytes:
    pdu = ExceptionResponse(fc, code, device_id=UNIT)
    pdu.transaction_id = tid
    return framer.buildFrame(pdu)


def framer(kind: str) -> FramerSocket | FramerRTU:
    return FramerSocket(DecodePDU(False)) if kind == "tcp" else FramerRTU(DecodePDU(False))


def values_of(pdu: ModbusPDU, fc: int, count: int) -> list[Any]:
    """What the adapter takes from an answer that passed its checks (a write's echo: address and value)."""
    if fc in (1, 2):
        return list(pdu.bits[:count])  # type: ignore[attr-defined]
    if fc in (3, 4):
        return list(pdu.registers)  # type: ignore[attr-defined]
    echoed = list(pdu.bits[:1]) if fc == 5 else list(pdu.registers)  # type: ignore[attr-defined]
    return [getattr(pdu, "address", None), *echoed]


def receive(kind: str, stream: bytes, pieces: list[int], tid: int) -> tuple[ModbusPDU | None, Exception | None]:
    """``stream`` arriving in reads of ``pieces`` bytes at a client waiting for transaction ``tid`` of
    unit 1, as pymodbus's transaction manager frames it: the first PDU it hands over, or the error."""
    f = framer(kind)
    buffer, pos = b"", 0
    for size in [*pieces, len(stream)]:
        buffer, pos = buffer + stream[pos : pos + size], pos + size
        try:
            used, pdu = f.handleFrame(buffer, UNIT, tid if kind == "tcp" else 0)
        except Exception as exc:
            return None, exc
        buffer = buffer[used:]
        if pdu is not None:
            return pdu, None
        if pos >= len(stream):
            break
    return None, None
