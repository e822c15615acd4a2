"""LADS ActiveProgram → run events and the lot / step that go on every record. Pure: no I/O.

A run starts when DeviceProgramRunId turns from empty to a value and ends when it empties again or
when CurrentState leaves ``Running.*`` (or the map's ``active_states``). A run already going when the
adapter connects is reported as ``run_in_progress`` rather than ``run_started``: after a reconnect the
gateway did not see it start, and a reviewer counting runs must not count it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.opcua.nodemap import ProgramSpec


@dataclass
class _Run:
    run_id: str
    lot: str | None
    template: str | None
    announced: bool = False
    seen_at_connect: bool = False


@dataclass
class ProgramTracker:
    """Follows one ActiveProgram through the program points' values, in the order they arrive."""

    spec: ProgramSpec | None
    _values: dict[str, Any] = field(default_factory=dict)
    _run: _Run | None = None
    _first: bool = True
    _pending: list[tuple[str, str]] = field(default_factory=list)
    _ended_lot: str | None = None
    _ended_step: str | None = None

    def watches(self, point: str) -> bool:
        return self.spec is not None and point in self.spec.point_names()

    def update(self, point: str, value: Any) -> None:
        """Take one program point's new value (only usable values: the caller skips Bad ones)."""
        spec = self.spec
        if spec is None or point not in spec.point_names():
            return
        previous_state = self._text(spec.state)
        self._values[point] = value
        if point == spec.run_id:
            run_id = self._text(spec.run_id)
            if self._run is not None and run_id != self._run.run_id:
                state = self._text(spec.state)
                why = "run id cleared" if not run_id else f"run id changed to {run_id}"
                self._end(f"{why} (state {state})" if state else why)
            if run_id and self._run is None:
                self._run = _Run(run_id, None, None, seen_at_connect=self._first)
        elif point == spec.state and self._run is not None:
            state = self._text(spec.state) or ""
            if previous_state is not None and spec.is_active(previous_state) and not spec.is_active(state):
                self._end(f"state {state}")

    def end_of_batch(self) -> list[tuple[str, str]]:
        """The events of the batch just read; call once per batch, after every update."""
        self._announce()
        if self.spec is not None and self.spec.run_id in self._values:
            self._first = False  # "at connect" lasts until the run id has been read once
        events, self._pending = self._pending, []
        return events

    def context(self) -> tuple[str | None, str | None]:
        """(lot_id, process_step) for the batch just read: the active run's, or the one that just ended."""
        if self._run is not None:
            return self._lot(), self._step()
        lot, step = self._ended_lot, self._ended_step
        self._ended_lot = self._ended_step = None
        return lot, step

    def _announce(self) -> None:
        run = self._run
        if run is None or run.announced:
            return
        run.lot, run.template, run.announced = self._lot(), self._text_opt("template"), True
        name = "run_in_progress" if run.seen_at_connect else "run_started"
        self._pending.append((name, f"run {run.run_id} template {run.template or '?'} lot {run.lot or '?'}"))

    def _end(self, why: str) -> None:
        run = self._run
        if run is None:
            return
        self._announce()
        self._ended_lot, self._ended_step = run.lot or self._lot(), self._step()
        self._pending.append(("run_ended", f"run {run.run_id} lot {run.lot or '?'}: {why}"))
        self._run = None

    def _lot(self) -> str | None:
        return self._text_opt("lot")

    def _step(self) -> str | None:
        return self._text_opt("step")

    def _text_opt(self, role: str) -> str | None:
        name = getattr(self.spec, role) if self.spec is not None else None
        return self._text(name) if name is not None else None

    def _text(self, point: str) -> str | None:
        value = self._values.get(point)
        return None if value is None or value == "" else str(value)
