"""Which lot each piece of equipment is working on, and since when: the chain of identity in the gateway.

A binding ties equipment to a lot (lot id, chain-of-identity id, DINs, process step) from a moment on,
until it is ended. Creating or ending one takes two different people: one performs it, another verifies
it, and both and the reason are kept. Records get the binding that was active for their equipment at
their ``source_time`` (the device's moment), so a reading that arrives late still lands on the right lot.

The :class:`BindingBook` is the in-memory index the pipeline consults; it is rebuilt at start from the
audit trail, where every binding change is written in the same transaction as its journal record.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.identity.din import parse_din

#: Audit actions of binding changes; their ``detail`` holds the binding as JSON.
BOUND, ENDED = "binding.created", "binding.ended"


class Binding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    binding_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    equipment_id: str = Field(min_length=1)
    lot_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\s]+$")
    coi_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="chain-of-identity identifier, opaque to the gateway"
    )
    dins: tuple[str, ...] = Field(default=(), description="ISBT 128 DINs, each given with its check character or flags")
    process_step: str | None = None
    performed_by: str = Field(min_length=1)
    verified_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    ended_by: str | None = None
    end_verified_by: str | None = None
    end_reason: str | None = None

    @field_validator("dins", mode="before")
    @classmethod
    def _checked_dins(cls, value: Any) -> tuple[str, ...]:
        """Each DIN checked, kept as its 13 characters + check character (so it re-checks when reloaded)."""
        if isinstance(value, str):
            value = [value]
        return tuple(f"{din.value}{din.check_character}" for din in (parse_din(str(v)) for v in value or ()))

    @model_validator(mode="after")
    def _two_people(self) -> Binding:
        if self.performed_by == self.verified_by:
            raise ValueError(
                f"{self.performed_by} performed this binding and cannot also verify it: a second person must"
            )
        if self.ended_by is not None and self.ended_by == self.end_verified_by:
            raise ValueError(f"{self.ended_by} ended this binding and cannot also verify the end: a second person must")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("a binding cannot end before it starts")
        return self

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    @property
    def din(self) -> str | None:
        """The DINs proper (13 characters each) as a record's ``din`` field carries them, comma separated."""
        return ",".join(d[:13] for d in self.dins) or None


@dataclass
class BindingBook:
    """Bindings by equipment, in time order; one open binding per equipment at a time."""

    _by_equipment: dict[str, list[Binding]] = field(default_factory=dict)

    @classmethod
    def from_audit(cls, entries: Iterable[dict[str, Any]]) -> BindingBook:
        """Rebuild from audit entries (``binding.created`` / ``binding.ended``, detail = the binding)."""
        book = cls()
        for entry in entries:
            if entry.get("action") in (BOUND, ENDED):
                binding = Binding.model_validate(entry["detail"]["binding"])
                book.record(binding)
        return book

    def active(self, equipment_id: str, at: datetime) -> Binding | None:
        """The binding of ``equipment_id`` that covers the moment ``at``, if any."""
        bindings = self._by_equipment.get(equipment_id, [])
        i = bisect.bisect_right([b.valid_from for b in bindings], at)
        while i > 0:
            i -= 1
            if bindings[i].covers(at):
                return bindings[i]
            if bindings[i].valid_to is None or bindings[i].valid_to <= at:
                return None
        return None

    def open_binding(self, equipment_id: str) -> Binding | None:
        bindings = self._by_equipment.get(equipment_id, [])
        return bindings[-1] if bindings and bindings[-1].valid_to is None else None

    def bound_lots(self, at: datetime) -> dict[str, Binding]:
        """Every lot bound to some equipment at ``at``, with its binding (for specimen-addressed results)."""
        return {b.lot_id: b for bindings in self._by_equipment.values() for b in bindings if b.covers(at)}

    def all(self) -> list[Binding]:
        return sorted((b for bs in self._by_equipment.values() for b in bs), key=lambda b: b.valid_from)

    def check_new(self, binding: Binding) -> None:
        """ValueError when ``binding`` cannot start: the equipment is bound already, or it starts in the past."""
        current = self.open_binding(binding.equipment_id)
        if current is not None:
            since = f"{current.valid_from:%Y-%m-%d %H:%M:%S}Z"
            raise ValueError(
                f"{binding.equipment_id} is bound to lot {current.lot_id} since {since}: end that binding first"
            )
        last = self._by_equipment.get(binding.equipment_id, [])
        if last and last[-1].valid_to is not None and binding.valid_from < last[-1].valid_to:
            raise ValueError(f"{binding.equipment_id}: a new binding cannot start before the previous one ended")

    def record(self, binding: Binding) -> None:
        """Add a binding, or replace the open one it ends (same binding_id)."""
        bindings = self._by_equipment.setdefault(binding.equipment_id, [])
        for i, known in enumerate(bindings):
            if known.binding_id == binding.binding_id:
                bindings[i] = binding
                return
        bindings.append(binding)
        bindings.sort(key=lambda b: b.valid_from)
