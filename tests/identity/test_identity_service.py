"""Binding changes and resolutions against a real journal: one transaction each, audited, rebuilt at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.identity import BindingBook, Identity, IdentityError
from gateway.journal import Journal, JournalReader, verify
from gateway.records import Isa95Path, Kind, Quality, RecordDraft, utc_now

EQUIPMENT = {"CP-1": ("cell_processor", Isa95Path(site="plant-1", area="suite-3", unit="cp-1")),
             "PC-1": ("particle_counter", None)}


@pytest.fixture
async def identity(tmp_path: Path) -> AsyncIterator[Identity]:
    async with Journal.open(tmp_path / "journal.sqlite", gateway_id="gw") as journal:
        yield Identity(journal, BindingBook(), EQUIPMENT, "ab" * 32)


def trail(path: Path) -> list[dict[str, object]]:
    with JournalReader(path) as reader:
        return reader.audit()


async def test_a_binding_is_a_record_with_its_audit_entry_and_survives_a_restart(identity: Identity) -> None:
    bound = await identity.bind("CP-1", "LOT-1", performed_by="alice", verified_by="bob", reason="CAR-T lot start",
                                coi_id="COI-0001", dins=["G123498654321H"], process_step="activation")
    with JournalReader(identity.journal.path) as reader:
        (record,) = list(reader.of_parameter("lot_binding"))
    assert (record.value, record.lot_id, record.coi_id, record.din, record.equipment_class) == (
        "bound", "LOT-1", "COI-0001", "G123498654321", "cell_processor")
    assert record.source_time == bound.valid_from
    (entry,) = trail(identity.journal.path)
    assert (entry["action"], entry["actor"], entry["reason"]) == ("binding.created", "alice", "CAR-T lot start")
    assert entry["detail"]["binding"]["verified_by"] == "bob" and entry["detail"]["first_seq"] == record.seq

    ended = await identity.unbind("CP-1", performed_by="carol", verified_by="alice", reason="lot harvested")
    rebuilt = BindingBook.from_audit(trail(identity.journal.path))
    (again,) = rebuilt.all()
    assert again == ended and again.valid_to is not None and again.end_verified_by == "alice"
    assert rebuilt.active("CP-1", bound.valid_from + timedelta(microseconds=1)).lot_id == "LOT-1"
    assert verify(identity.journal.path).ok


async def test_refused_changes_say_why_and_leave_no_trace(identity: Identity) -> None:
    with pytest.raises(IdentityError, match="alice performed this binding and cannot also verify it"):
        await identity.bind("CP-1", "LOT-1", performed_by="alice", verified_by="alice", reason="r")
    with pytest.raises(IdentityError, match="no equipment 'CP-9'"):
        await identity.bind("CP-9", "LOT-1", performed_by="alice", verified_by="bob", reason="r")
    with pytest.raises(IdentityError, match="check character is X"):
        await identity.bind("CP-1", "LOT-1", performed_by="alice", verified_by="bob", reason="r",
                            dins=["G123498654321X"])
    with pytest.raises(IdentityError, match="CP-1 is not bound to any lot"):
        await identity.unbind("CP-1", performed_by="alice", verified_by="bob", reason="r")
    await identity.bind("CP-1", "LOT-1", performed_by="alice", verified_by="bob", reason="r")
    with pytest.raises(IdentityError, match="end that binding first"):
        await identity.bind("CP-1", "LOT-2", performed_by="alice", verified_by="bob", reason="r")
    assert [e["action"] for e in trail(identity.journal.path)] == ["binding.created"]


async def test_an_exception_and_an_alarm_are_closed_once_with_who_and_why(identity: Identity) -> None:
    def event(parameter: str, kind: Kind, value: str) -> RecordDraft:
        return RecordDraft(equipment_id="PC-1", equipment_class="particle_counter", parameter=parameter,
                           source="equipment://PC-1", kind=kind, value=value, quality=Quality.GOOD,
                           gateway_time=utc_now(), config_hash="ab" * 32)

    committed = await identity.journal.append([
        (event("identity_exception", Kind.EVENT, "unmatched_specimen"), None),
        (event("particle_concentration_0_5um", Kind.ALARM, "action_limit_exceeded"), None),
        (event("particle_concentration_0_5um", Kind.MEASUREMENT, "x"), None),
    ])
    exception_seq, alarm_seq, plain_seq = committed.seqs
    await identity.resolve_exception(exception_seq, actor="qa-dana", reason="specimen relabelled, see deviation 42")
    await identity.acknowledge_alarm(alarm_seq, actor="op-eve", comment="door opened for a transfer")
    with pytest.raises(IdentityError, match=f"seq {exception_seq} was already closed by qa-dana"):
        await identity.resolve_exception(exception_seq, actor="qa-dana", reason="again")
    with pytest.raises(IdentityError, match="not an open alarm"):
        await identity.acknowledge_alarm(plain_seq, actor="op-eve", comment="c")
    with pytest.raises(IdentityError, match="needs a reason"):
        await identity.acknowledge_alarm(alarm_seq, actor="op-eve", comment=" ")
    with JournalReader(identity.journal.path) as reader:
        closed = reader.resolutions()
    assert (closed[exception_seq].actor, closed[exception_seq].kind) == ("qa-dana", "exception")
    assert closed[alarm_seq].reason == "door opened for a transfer"
    assert [e["action"] for e in trail(identity.journal.path)] == ["exception.resolved", "alarm.acknowledged"]
