"""Records carry the lot bound to their equipment at their source time; mismatches and unmatched
specimens become exception records; bindings need two people."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.identity import Attribution, Binding, BindingBook
from gateway.pipeline import EquipmentPipeline
from gateway.records import Kind, Quality, RawReading, ReadingBatch, RecordDraft, utc_now
from tests.fakes import FakeEquipment, fake_map

T0 = utc_now().replace(microsecond=0)


def binding(lot: str, start: int, end: int | None = None, equipment: str = "CP-1", **more: object) -> Binding:
    return Binding(
        equipment_id=equipment, lot_id=lot, performed_by="alice", verified_by="bob", reason="lot start",
        valid_from=T0 + timedelta(seconds=start), valid_to=None if end is None else T0 + timedelta(seconds=end),
        **more,
    )


def pipeline(book: BindingBook, mode: str = "equipment") -> EquipmentPipeline:
    eq = FakeEquipment(id="CP-1", equipment_class="cell_processor", identity=mode)
    return EquipmentPipeline(eq, fake_map(eq.points), "h" * 64, attribution=Attribution("CP-1", book, mode))


def read(p: EquipmentPipeline, second: int, lot: str | None = None, arrived: int | None = None) -> list[RecordDraft]:
    """One reading taken at T0+second (device clock), arriving at T0+arrived."""
    at = T0 + timedelta(seconds=second)
    reading = RawReading("CP-1", "temperature", "x", 37.0, T0 + timedelta(seconds=arrived or second), source_time=at)
    return [d for d, _ in p.process(ReadingBatch("CP-1", [reading], lot_id=lot))]


def test_a_binding_needs_two_different_people_and_checked_dins() -> None:
    with pytest.raises(ValueError, match="alice performed this binding and cannot also verify it"):
        Binding(equipment_id="CP-1", lot_id="LOT-1", performed_by="alice", verified_by="alice", reason="r",
                valid_from=T0)
    with pytest.raises(ValueError, match="check character is X"):
        binding("LOT-1", 0, dins=["G123498654321X"])
    assert binding("LOT-1", 0, dins=["G1234 98 654321 H", "=W12342400000180"]).din == "G123498654321,W123424000001"


def test_records_before_during_and_after_a_binding_carry_the_lot_of_their_source_time() -> None:
    book = BindingBook()
    book.record(binding("LOT-1", 10, 20, coi_id="COI-9", dins=["G123498654321H"], process_step="expansion"))
    book.record(binding("LOT-2", 30))
    p = pipeline(book)
    assert read(p, 5)[0].lot_id is None
    during = read(p, 15)[0]
    assert (during.lot_id, during.coi_id, during.din, during.process_step) == (
        "LOT-1", "COI-9", "G123498654321", "expansion")
    assert read(p, 20)[0].lot_id is None  # the end is exclusive
    assert read(p, 31)[0].lot_id == "LOT-2"
    # a reading taken during LOT-1 but arriving after LOT-2 started still belongs to LOT-1
    assert read(p, 19, arrived=40)[0].lot_id == "LOT-1"


def test_a_device_reporting_another_lot_raises_one_exception_and_records_stay_on_the_bound_lot() -> None:
    book = BindingBook()
    book.record(binding("LOT-1", 0))
    p = pipeline(book)
    first = read(p, 5, lot="LOT-9")
    assert [d.parameter for d in first] == ["temperature", "identity_exception"]
    assert first[0].lot_id == "LOT-1"
    exception = first[1]
    assert (exception.kind, exception.value, exception.lot_id) == (Kind.EVENT, "lot_mismatch", "LOT-1")
    assert "reports lot LOT-9 but is bound to lot LOT-1" in (exception.detail or "")
    assert [d.parameter for d in read(p, 6, lot="LOT-9")] == ["temperature"]  # once per mismatch
    assert [d.parameter for d in read(p, 7, lot="LOT-1")] == ["temperature"]
    assert [d.parameter for d in read(p, 8, lot="LOT-9")] == ["temperature", "identity_exception"]


def test_a_result_for_a_lot_bound_nowhere_is_kept_unattributed_and_flagged() -> None:
    book = BindingBook()
    book.record(binding("LOT-1", 0, equipment="CRF-1", coi_id="COI-1"))
    p = pipeline(book, mode="specimen")
    matched = read(p, 5, lot="LOT-1")
    assert [d.parameter for d in matched] == ["temperature"] and matched[0].coi_id == "COI-1"
    result, exception = read(p, 6, lot="LOT-7")
    assert result.lot_id is None and result.value == 37.0  # kept, never dropped
    assert (exception.value, exception.lot_id) == ("unmatched_specimen", "LOT-7")


def test_a_new_binding_waits_for_the_open_one_to_end() -> None:
    book = BindingBook()
    book.record(binding("LOT-1", 0))
    with pytest.raises(ValueError, match=r"CP-1 is bound to lot LOT-1 since .*: end that binding first"):
        book.check_new(binding("LOT-2", 5))


def test_the_gap_of_a_communication_loss_belongs_to_the_bound_lot() -> None:
    book = BindingBook()
    book.record(binding("LOT-1", 0))
    p = pipeline(book)
    drafts = [d for d, _ in p.communication_lost(Quality.BAD_COMMUNICATION_ERROR, "gone", T0 + timedelta(seconds=3))]
    assert drafts and all(d.lot_id == "LOT-1" for d in drafts)
