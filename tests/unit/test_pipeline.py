"""The per-equipment pipeline: device-reported context and timestamps reach every record of a read."""

from __future__ import annotations

from datetime import timedelta

from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, RawReading, ReadingBatch, utc_now
from tests.fakes import FakeEquipment, fake_map


def test_lot_and_step_reported_by_the_device_go_on_every_record_of_the_read() -> None:
    eq = FakeEquipment(id="CP-1", equipment_class="cell_processor", points=["temperature", "ph"])
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64)
    now = utc_now()
    server = now - timedelta(milliseconds=40)
    source = now - timedelta(milliseconds=90)
    readings = [RawReading("CP-1", p, f"opc.tcp://x/{p}", 37.0, now, source_time=source, server_time=server)
                for p in eq.points]
    batch = ReadingBatch("CP-1", readings, events=[("run_started", "program CAR-T")], lot_id="LOT-42",
                         process_step="expansion")
    drafts = [d for d, _ in pipeline.process(batch)]
    assert [d.kind for d in drafts] == [Kind.EVENT, Kind.MEASUREMENT, Kind.MEASUREMENT]
    assert all(d.lot_id == "LOT-42" and d.process_step == "expansion" for d in drafts)
    measured = drafts[1]
    assert measured.source_time == source and measured.server_time == server and measured.gateway_time == now


def test_without_device_context_records_carry_none() -> None:
    eq = FakeEquipment(id="T1", equipment_class="freezer")
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64)
    batch = ReadingBatch("T1", [RawReading("T1", "temperature", "x", -80.0, utc_now())])
    (draft, raw), = pipeline.process(batch)
    assert draft.lot_id is None and draft.server_time is None and raw is None


def test_several_values_of_one_point_in_a_read_are_all_journalled_in_order() -> None:
    eq = FakeEquipment(id="CP-1", equipment_class="cell_processor")
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64)
    now = utc_now()
    burst = [RawReading("CP-1", "temperature", "x", v, now) for v in (36.9, 37.0, 37.1)]
    drafts = [d for d, _ in pipeline.process(ReadingBatch("CP-1", burst))]
    assert [d.value for d in drafts] == [36.9, 37.0, 37.1]
