"""Block planning: one request per contiguous run, within the protocol limits, small gaps bridged."""

from __future__ import annotations

from typing import Any

from adapters.modbus.blocks import plan_blocks
from adapters.modbus.registermap import ModbusPoint


def pt(name: str, table: str, address: int, type_: str = "uint16", **kw: Any) -> ModbusPoint:
    return ModbusPoint(name=name, table=table, address=address, type=type_, **kw)  # type: ignore[arg-type]


def spans(blocks: list[Any]) -> list[tuple[str, int, int]]:
    return [(b.table, b.address, b.count) for b in blocks]


def test_contiguous_points_make_one_request() -> None:
    points = [pt("a", "input", 8, "uint32"), pt("b", "input", 10, "uint32"), pt("c", "input", 12, "uint32")]
    blocks = plan_blocks(points)
    assert spans(blocks) == [("input", 8, 6)]
    assert [p.name for p in blocks[0].points] == ["a", "b", "c"]
    assert blocks[0].function_code == 4 and blocks[0].end == 14


def test_small_gaps_are_bridged_and_large_ones_split() -> None:
    points = [pt("a", "holding", 0), pt("b", "holding", 5), pt("c", "holding", 40)]
    assert spans(plan_blocks(points, max_gap_registers=4)) == [("holding", 0, 6), ("holding", 40, 1)]
    assert spans(plan_blocks(points, max_gap_registers=3)) == [("holding", 0, 1), ("holding", 5, 1), ("holding", 40, 1)]
    assert spans(plan_blocks(points, max_gap_registers=34)) == [("holding", 0, 41)]
    assert spans(plan_blocks(points, max_gap_registers=0)) == [("holding", 0, 1), ("holding", 5, 1), ("holding", 40, 1)]


def test_tables_are_never_mixed_and_come_in_a_stable_order() -> None:
    points = [pt("i", "input", 0), pt("h", "holding", 0), pt("c", "coil", 0, "bool"), pt("d", "discrete", 0, "bool")]
    assert [b.table for b in plan_blocks(points)] == ["coil", "discrete", "holding", "input"]
    assert [b.function_code for b in plan_blocks(points)] == [1, 2, 3, 4]


def test_register_blocks_stop_at_125_registers() -> None:
    points = [pt(f"p{i}", "holding", i * 2, "uint32") for i in range(100)]  # 200 registers, no gaps
    blocks = plan_blocks(points)
    assert all(b.count <= 125 for b in blocks)
    assert spans(blocks) == [("holding", 0, 124), ("holding", 124, 76)]  # a uint32 is never split
    assert sum(len(b.points) for b in blocks) == 100


def test_bit_blocks_stop_at_2000_bits_and_use_the_bit_gap() -> None:
    coils = [pt(f"c{i}", "coil", i, "bool") for i in range(0, 2500, 10)]
    blocks = plan_blocks(coils, max_gap_bits=16)
    assert all(b.count <= 2000 for b in blocks)
    assert sum(len(b.points) for b in blocks) == len(coils)
    assert spans(plan_blocks([pt("a", "coil", 0, "bool"), pt("b", "coil", 100, "bool")], max_gap_bits=64)) == [
        ("coil", 0, 1), ("coil", 100, 1)]


def test_overlapping_points_share_registers() -> None:
    # A status word and bools taken from its bits, and a 2-register word around them.
    points = [pt("word", "input", 6, "bits", count=2), pt("laser", "input", 7, "bool", bit=0),
              pt("flow", "input", 7, "bool", bit=1)]
    blocks = plan_blocks(points)
    assert spans(blocks) == [("input", 6, 2)]
    assert len(blocks[0].points) == 3


def test_a_string_spans_its_count() -> None:
    blocks = plan_blocks([pt("name", "holding", 6, "string", count=8), pt("model", "holding", 14, "string", count=8)])
    assert spans(blocks) == [("holding", 6, 16)]
