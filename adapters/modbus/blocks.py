"""Group points into as few read requests as the protocol allows. Pure: no I/O.

A request costs a round trip (tens of milliseconds on RS-485); a few unused registers cost two bytes
each. So points of one table are merged into one block while the block stays within the protocol
limit (125 registers, 2000 bits) and the hole between two points is at most ``max_gap``. Devices that
answer an unmapped register with an address error (PMS AirNet) need a map with ``max_gap_registers: 0``
or only contiguous points there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adapters.modbus.registermap import BIT_TABLES, MAX_BITS, MAX_REGISTERS, ModbusPoint, Table

#: Function code of a read per table.
READ_FUNCTION = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
TABLE_ORDER = {"coil": 0, "discrete": 1, "holding": 2, "input": 3}


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``address``, and what is in it."""

    table: Table
    address: int
    count: int
    points: tuple[ModbusPoint, ...]

    @property
    def function_code(self) -> int:
        return READ_FUNCTION[self.table]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_blocks(
    points: Iterable[ModbusPoint], *, max_gap_registers: int = 16, max_gap_bits: int = 64
) -> list[Block]:
    """Contiguous read requests covering every point, ordered by table then address.

    Overlapping points (a status word and the bools taken from its bits) share the registers they
    overlap. A point is never split across two requests.
    """
    by_table: dict[str, list[ModbusPoint]] = {}
    for p in points:
        by_table.setdefault(p.table, []).append(p)
    blocks: list[Block] = []
    for table in sorted(by_table, key=TABLE_ORDER.__getitem__):
        bits = table in BIT_TABLES
        limit, gap = (MAX_BITS, max_gap_bits) if bits else (MAX_REGISTERS, max_gap_registers)
        members = sorted(by_table[table], key=lambda p: (p.address, p.span))
        start, end, current = members[0].address, members[0].address + members[0].span, [members[0]]
        for p in members[1:]:
            p_end = p.address + p.span
            if p.address - end <= gap and max(end, p_end) - start <= limit:
                end = max(end, p_end)
                current.append(p)
                continue
            blocks.append(Block(table, start, end - start, tuple(current)))  # type: ignore[arg-type]
            start, end, current = p.address, p_end, [p]
        blocks.append(Block(table, start, end - start, tuple(current)))  # type: ignore[arg-type]
    return blocks
