"""The per-equipment pipeline: device-reported context and timestamps reach every record of a read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

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


class AboveMonitor:
    """A monitor as an adapter plugin would give one: an alarm on the transition above a limit."""

    def __init__(self, limit: float) -> None:
        self.limit, self.above = limit, False

    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            if row["parameter"] == "temperature" and (row["value"] > self.limit) != self.above:
                self.above = not self.above
                out.append({"parameter": "temperature_alarm", "kind": Kind.ALARM, "gateway_time": row["gateway_time"],
                            "value": "high" if self.above else "normal", "source_time": row["source_time"],
                            "detail": f"{row['value']} against {self.limit}"})
        return out


def test_a_monitors_rows_follow_the_read_completed_with_identity_and_context() -> None:
    eq = FakeEquipment(id="DAQ-1", equipment_class="temperature_daq")
    pipeline = EquipmentPipeline(eq, fake_map(eq.points), "h" * 64, monitors=[AboveMonitor(-150.0)])
    now = utc_now()

    def read(value: float) -> list:
        batch = ReadingBatch("DAQ-1", [RawReading("DAQ-1", "temperature", "x", value, now, source_time=now)],
                             lot_id="LOT-7")
        return [d for d, _ in pipeline.process(batch)]

    assert [d.parameter for d in read(-180.0)] == ["temperature"]
    measured, alarm = read(-140.0)
    assert measured.value == -140.0
    assert (alarm.parameter, alarm.kind, alarm.value) == ("temperature_alarm", Kind.ALARM, "high")
    assert alarm.equipment_id == "DAQ-1" and alarm.source == "equipment://DAQ-1" and alarm.quality == "Good"
    assert alarm.lot_id == "LOT-7" and alarm.source_time == now and alarm.config_hash == "h" * 64
    assert [d.value for d in read(-141.0)] == [-141.0]  # no second alarm while it stays above
    assert [d.value for d in read(-170.0)] == [-170.0, "normal"]
