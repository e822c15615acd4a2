"""Records of a read are built without per-record validation only when that changes nothing.

The pipeline checks a read's device values once (``plain_read``) and then builds its drafts directly
(``trusted_draft``); anything of another type sends the read through full validation, which decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from gateway import pipeline as pipeline_module
from gateway.pipeline import EquipmentPipeline
from gateway.points import DeviceMap, PointSpec
from gateway.records import (
    DRAFT_FIELDS,
    Isa95Path,
    Kind,
    Quality,
    RawReading,
    ReadingBatch,
    RecordDraft,
    trusted_draft,
    utc_now,
)
from tests.fakes import FakeEquipment

POINTS = ["temperature", "count", "door_open", "mode", "state_code", "flow"]


def device_map() -> DeviceMap:
    return DeviceMap(name="mixed", points={
        "temperature": PointSpec(name="temperature", parameter="temperature", unit="Cel", scale=0.1, valid_max=60),
        "count": PointSpec(name="count", parameter="count", unit="{particles}"),
        "door_open": PointSpec(name="door_open", parameter="door_open", kind=Kind.STATE),
        "mode": PointSpec(name="mode", parameter="mode", kind=Kind.STATE),
        "state_code": PointSpec(name="state_code", parameter="state", kind=Kind.STATE, states={1: "running"}),
        "flow": PointSpec(name="flow", parameter="flow", unit="L/min"),
    })


def pipeline() -> EquipmentPipeline:
    eq = FakeEquipment(id="PC-1", equipment_class="particle_counter", points=POINTS,
                       isa95=Isa95Path(site="s", area="grade-b", unit="suite-3"))
    return EquipmentPipeline(eq, device_map(), "h" * 64)


def read(**batch: object) -> ReadingBatch:
    now = utc_now()
    device = now - timedelta(seconds=2)
    values: dict[str, object] = {"temperature": 712, "count": 3520, "door_open": True, "mode": "auto",
                                 "state_code": 7, "flow": None}
    readings = [
        RawReading("PC-1", p, f"modbus+tcp://127.0.0.1:5020/1/holding/{i}", v, now, source_time=device,
                   raw=bytes([i, 0]), quality=Quality.BAD_SENSOR_FAILURE if v is None else Quality.GOOD,
                   detail="laser fault" if v is None else None)
        for i, (p, v) in enumerate(values.items())
    ]
    readings.append(RawReading("PC-1", "stray", "modbus+tcp://127.0.0.1:5020/1/holding/99", 5, now))
    return ReadingBatch("PC-1", readings, **batch)  # type: ignore[arg-type]


def validated_in_full(batch: ReadingBatch, monkeypatch: pytest.MonkeyPatch) -> list[RecordDraft]:
    with monkeypatch.context() as m:
        m.setattr(pipeline_module, "plain_read", lambda items, batch: False)
        return [d for d, _ in pipeline().process(batch)]


@pytest.mark.parametrize("context", [{}, {"lot_id": "LOT-42", "process_step": "fill", "clock_offset_s": 1.5}])
def test_drafts_of_a_plain_read_are_exactly_what_full_validation_returns(
    monkeypatch: pytest.MonkeyPatch, context: dict[str, object]
) -> None:
    batch = read(**context)
    fast = [d for d, _ in pipeline().process(batch)]
    full = validated_in_full(batch, monkeypatch)
    assert [d.parameter for d in fast] == ["temperature", "count", "door_open", "mode", "state", "flow",
                                          "unmapped.stray"]
    assert fast == full
    for a, b in zip(fast, full, strict=True):
        assert {k: type(v) for k, v in a.__dict__.items()} == {k: type(v) for k, v in b.__dict__.items()}
        assert a.model_dump_json() == b.model_dump_json()
    assert fast[0].value == pytest.approx(71.2) and fast[0].quality is Quality.UNCERTAIN_ENGINEERING_UNITS_EXCEEDED
    assert fast[4].value == 7 and fast[4].quality is Quality.UNCERTAIN  # a state code the map does not know
    assert fast[6].quality is Quality.BAD_CONFIGURATION_ERROR


def test_a_device_time_without_a_zone_is_still_refused() -> None:
    batch = read()
    naive = datetime(2026, 1, 1, 12, 0, 0)
    batch.readings[1].source_time = naive
    with pytest.raises(ValidationError, match="source_time"):
        pipeline().process(batch)


def test_a_device_value_of_another_type_goes_through_full_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = read()
    batch.readings[1].value = Decimal("3520")
    fast = [d for d, _ in pipeline().process(batch)]
    assert fast == validated_in_full(batch, monkeypatch)
    assert type(fast[1].value) is float and fast[1].value == 3520.0
    batch.readings[1].value = [35, 20]
    with pytest.raises(ValidationError, match="value"):
        pipeline().process(batch)


def test_a_clock_offset_given_as_an_int_is_journalled_as_validation_makes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = read(clock_offset_s=2)
    fast = [d for d, _ in pipeline().process(batch)]
    assert all(type(d.clock_offset_s) is float and d.clock_offset_s == 2.0 for d in fast)
    assert fast == validated_in_full(batch, monkeypatch)


def test_trusted_draft_validates_a_row_that_is_not_a_whole_draft() -> None:
    row = {**DRAFT_FIELDS, "equipment_id": "PC-1", "equipment_class": "pc", "parameter": "p", "source": "s",
           "kind": Kind.MEASUREMENT, "value": 1, "quality": Quality.GOOD, "gateway_time": utc_now(),
           "config_hash": "h"}
    assert trusted_draft(dict(row)) == RecordDraft.model_validate(row)
    del row["source"]
    with pytest.raises(ValidationError, match="source"):
        trusted_draft(row)
    with pytest.raises(ValidationError, match="bogus"):
        trusted_draft({**DRAFT_FIELDS, "bogus": 1})
