"""Changes to the chain of identity and closing flagged records: what an operator or QA user does.

Each change is one journal transaction: a record that travels with the data (``lot_binding`` bound /
unbound, so the MES sees it in order with the readings) and an audit entry saying who, verified by
whom, and why. The in-memory :class:`BindingBook` follows only once the transaction is durable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from gateway.identity.attribution import EXCEPTION_PARAMETER
from gateway.identity.bindings import BOUND, ENDED, Binding, BindingBook
from gateway.journal import AuditEntry, Journal
from gateway.records import Isa95Path, Kind, Quality, RecordDraft, utc_now

log = structlog.get_logger(__name__)

BINDING_PARAMETER = "lot_binding"


class IdentityError(ValueError):
    """A change refused: unknown equipment, the same person twice, a bad DIN, already bound."""


class Identity:
    def __init__(
        self,
        journal: Journal,
        book: BindingBook,
        equipment: Mapping[str, tuple[str, Isa95Path | None]],
        config_hash: str,
    ) -> None:
        """``equipment`` maps each id to its class and ISA-95 path, for the binding records."""
        self.journal = journal
        self.book = book
        self.equipment = dict(equipment)
        self.config_hash = config_hash

    async def bind(
        self,
        equipment_id: str,
        lot_id: str,
        *,
        performed_by: str,
        verified_by: str,
        reason: str,
        coi_id: str | None = None,
        dins: Sequence[str] = (),
        process_step: str | None = None,
        at: datetime | None = None,
    ) -> Binding:
        """Bind equipment to a lot from ``at`` (now) on. IdentityError says in one line why not."""
        self._known(equipment_id)
        try:
            binding = Binding(
                equipment_id=equipment_id, lot_id=lot_id, coi_id=coi_id, dins=tuple(dins), process_step=process_step,
                performed_by=performed_by, verified_by=verified_by, reason=reason, valid_from=at or utc_now(),
            )
            self.book.check_new(binding)
        except ValueError as exc:
            raise IdentityError(_one_line(exc)) from None
        detail = f"lot {lot_id} bound by {performed_by}, verified by {verified_by}: {reason}"
        await self._commit(binding, "bound", binding.valid_from, detail, AuditEntry(
            BOUND, f"equipment {equipment_id}", reason, {"binding": binding.model_dump(mode="json")}, performed_by,
        ))
        log.info("lot bound", equipment_id=equipment_id, lot_id=lot_id, performed_by=performed_by,
                 verified_by=verified_by)
        return binding

    async def unbind(
        self, equipment_id: str, *, performed_by: str, verified_by: str, reason: str, at: datetime | None = None
    ) -> Binding:
        """End the equipment's open binding at ``at`` (now)."""
        self._known(equipment_id)
        current = self.book.open_binding(equipment_id)
        if current is None:
            raise IdentityError(f"{equipment_id} is not bound to any lot")
        try:
            ended = Binding.model_validate(current.model_dump() | {
                "valid_to": at or utc_now(), "ended_by": performed_by, "end_verified_by": verified_by,
                "end_reason": reason,
            })
        except ValueError as exc:
            raise IdentityError(_one_line(exc)) from None
        assert ended.valid_to is not None
        detail = f"lot {current.lot_id} unbound by {performed_by}, verified by {verified_by}: {reason}"
        await self._commit(ended, "unbound", ended.valid_to, detail, AuditEntry(
            ENDED, f"equipment {equipment_id}", reason, {"binding": ended.model_dump(mode="json")}, performed_by,
        ))
        log.info("lot unbound", equipment_id=equipment_id, lot_id=current.lot_id, performed_by=performed_by)
        return ended

    async def resolve_exception(self, seq: int, *, actor: str, reason: str) -> None:
        """QA closes an identity exception with a reason; it leaves the open exception list."""
        await self._resolve(seq, "exception", [EXCEPTION_PARAMETER], "exception.resolved", actor, reason)

    async def acknowledge_alarm(self, seq: int, *, actor: str, comment: str) -> None:
        """An operator acknowledges an alarm record with a comment."""
        await self._resolve(seq, "alarm", [], "alarm.acknowledged", actor, comment)

    async def _resolve(
        self, seq: int, kind: str, parameters: list[str], action: str, actor: str, reason: str
    ) -> None:
        if not reason.strip():
            raise IdentityError(f"closing seq {seq} needs a reason")
        try:
            await self.journal.resolve(seq, kind, parameters, AuditEntry(action, f"seq {seq}", reason, {"seq": seq},
                                                                          actor))
        except ValueError as exc:
            raise IdentityError(str(exc)) from None

    async def _commit(self, binding: Binding, value: str, at: datetime, detail: str, entry: AuditEntry) -> None:
        equipment_class, isa95 = self.equipment[binding.equipment_id]
        draft = RecordDraft(
            equipment_id=binding.equipment_id, equipment_class=equipment_class, isa95=isa95,
            parameter=BINDING_PARAMETER, source=f"gateway://identity/{binding.binding_id}", kind=Kind.EVENT,
            value=value, quality=Quality.GOOD, source_time=at, gateway_time=utc_now(), lot_id=binding.lot_id,
            coi_id=binding.coi_id, din=binding.din, process_step=binding.process_step, detail=detail,
            config_hash=self.config_hash,
        )
        await self.journal.append([(draft, None)], audit=[entry])
        self.book.record(binding)

    def _known(self, equipment_id: str) -> None:
        if equipment_id not in self.equipment:
            known = ", ".join(sorted(self.equipment)) or "none"
            raise IdentityError(f"no equipment {equipment_id!r} in this gateway's site file (configured: {known})")


def _one_line(exc: ValueError) -> str:
    """A pydantic error as one readable line (its first problem, without the URL footer)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)
