"""Putting the chain of identity on records: the binding active at each record's moment, and the
exceptions a QA user must see when the equipment says something else.

Two ways equipment relates to lots:

* ``equipment`` (processors, freezers, storage): the equipment works on the lot bound to it; every
  record gets that binding by its ``source_time``. When the device itself reports a lot (an OPC UA
  program's SupervisoryJobId) that differs from the bound one, an ``identity_exception`` record says so
  once per mismatch; the records keep the verified binding, they are never re-attributed.
* ``specimen`` (a culture reader): each result names its own lot (from the specimen id). It gets that
  lot's binding when the lot is bound to some equipment at that moment; otherwise the result is kept,
  unattributed, and an ``identity_exception`` record flags it for QA.

Without any binding the device-reported context (if any) stays on the records, as before.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Literal

from gateway.identity.bindings import Binding, BindingBook
from gateway.records import Kind, Quality

IdentityMode = Literal["equipment", "specimen"]
EXCEPTION_PARAMETER = "identity_exception"


class Attribution:
    """Per equipment: applies bindings to rows and remembers which mismatch it has already reported."""

    def __init__(self, equipment_id: str, book: BindingBook, mode: IdentityMode = "equipment") -> None:
        self.equipment_id = equipment_id
        self.book = book
        self.mode = mode
        self._reported: tuple[str, str] | None = None

    def apply(
        self, rows: list[dict[str, Any]], device_lot: str | None, device_step: str | None
    ) -> list[dict[str, Any]]:
        """Set each row's lot context; return the exception rows to journal after them."""
        exceptions: list[dict[str, Any]] = []
        moment: Any = None
        context: dict[str, Any] = {}
        for row in rows:
            at = row.get("source_time") or row["gateway_time"]
            if at is not moment:  # the rows of one read share their moment: look its binding up once
                moment, context = at, self._context(at, device_lot, device_step)
            row.update(context)
        if rows:
            exception = self._exception(rows[0], device_lot)
            if exception is not None:
                exceptions.append(exception)
        return exceptions

    def _context(self, at: Any, device_lot: str | None, device_step: str | None) -> dict[str, Any]:
        """The lot context of a record at ``at``: the binding's, else the device's (or none)."""
        binding = self._binding_for(at, device_lot)
        if binding is not None:
            return {"lot_id": binding.lot_id, "coi_id": binding.coi_id, "din": binding.din,
                    "process_step": binding.process_step or device_step}
        return {"lot_id": device_lot if self.mode == "equipment" else None, "process_step": device_step}

    def _binding_for(self, at: Any, device_lot: str | None) -> Binding | None:
        if self.mode == "equipment":
            return self.book.active(self.equipment_id, at)
        return self.book.bound_lots(at).get(device_lot) if device_lot is not None else None

    def _exception(self, first: MutableMapping[str, Any], device_lot: str | None) -> dict[str, Any] | None:
        at = first.get("source_time") or first["gateway_time"]
        if self.mode == "specimen":
            if device_lot is None or device_lot in self.book.bound_lots(at):
                return None
            return _row(first, "unmatched_specimen", device_lot,
                        f"result for lot {device_lot}, which is bound to no equipment at {at:%Y-%m-%d %H:%M:%S}Z: "
                        "kept unattributed until QA resolves it")
        bound = self.book.active(self.equipment_id, at)
        if device_lot is None or bound is None or device_lot == bound.lot_id:
            self._reported = None
            return None
        if self._reported == (device_lot, bound.lot_id):
            return None
        self._reported = (device_lot, bound.lot_id)
        return _row(first, "lot_mismatch", bound.lot_id,
                    f"{self.equipment_id} reports lot {device_lot} but is bound to lot {bound.lot_id}: "
                    "records stay on the bound lot until QA resolves it")


def _row(first: MutableMapping[str, Any], value: str, lot_id: str | None, detail: str) -> dict[str, Any]:
    return {
        "parameter": EXCEPTION_PARAMETER,
        "kind": Kind.EVENT,
        "value": value,
        "quality": Quality.GOOD,
        "source_time": first.get("source_time"),
        "gateway_time": first["gateway_time"],
        "lot_id": lot_id,
        "detail": detail,
    }
