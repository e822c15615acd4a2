"""What every counter profile shares: the four Modbus tables, register spans and the device contract.

A profile is a register layout (data: `layout`, address enums) plus the little behaviour that differs
between vendors (code: `render`, `write`, `after_read`). The server asks the device to render a table
just before answering a read, so registers are a view of the model, never a second copy to keep in step.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from pymodbus.constants import ExcCodes

from ..model import CounterModel
from ..registers import u16

#: Calibration due this far after start-up unless the `calibration_overdue` fault is active.
CALIBRATION_INTERVAL_S = 180 * 86_400


class Table(enum.StrEnum):
    """The four Modbus data tables."""

    COILS = "c"
    DISCRETE_INPUTS = "d"
    HOLDING = "h"
    INPUT = "i"


#: Which table each supported function code reads or writes.
TABLE_OF_FUNCTION: Mapping[int, Table] = MappingProxyType(
    {
        1: Table.COILS,
        5: Table.COILS,
        15: Table.COILS,
        2: Table.DISCRETE_INPUTS,
        3: Table.HOLDING,
        6: Table.HOLDING,
        16: Table.HOLDING,
        22: Table.HOLDING,
        23: Table.HOLDING,
        4: Table.INPUT,
    }
)


@dataclass(frozen=True)
class Span:
    """A run of defined addresses in one table. Addresses outside every span answer exception 2."""

    start: int
    count: int
    writable: bool = False

    def __contains__(self, address: object) -> bool:
        return isinstance(address, int) and self.start <= address < self.start + self.count


class CounterDevice(ABC):
    """One counter as a Modbus slave: a CounterModel seen through a vendor's register layout."""

    profile: ClassVar[str]
    #: Function codes the vendor documents; others answer exception 1 (illegal function).
    function_codes: ClassVar[frozenset[int]]
    #: Defined addresses per table (0-based protocol addresses, as on the wire).
    layout: ClassVar[Mapping[Table, tuple[Span, ...]]]
    default_channels_um: ClassVar[tuple[float, ...]]
    max_channels: ClassVar[int]
    default_buffer_capacity: ClassVar[int]

    def __init__(self, model: CounterModel, unit_id: int) -> None:
        if len(model.config.channels_um) > self.max_channels:
            raise ValueError(
                f"{self.profile} supports at most {self.max_channels} particle channels, "
                f"got {len(model.config.channels_um)}"
            )
        self.model = model
        self.unit_id = unit_id
        #: Values written by the host to plain settings registers, keyed by (table, address).
        self.stored: dict[tuple[Table, int], int] = {}
        self.calibration_due = int(model.device_time()) + CALIBRATION_INTERVAL_S

    @abstractmethod
    def render(self, table: Table, now: float) -> dict[int, int]:
        """Current values of the table's computed addresses (bits as 0/1); others keep stored values."""

    @abstractmethod
    def write_one(self, table: Table, address: int, value: int, now: float) -> ExcCodes | None:
        """Apply one written register or coil; return an exception code to refuse it."""

    def restart(self, now: float) -> None:
        """A power cycle: the model restarts; settings live in non-volatile memory and survive."""
        self.model.restart(now)
        self.on_restart()

    def on_restart(self) -> None:
        """Forget the volatile registers a power cycle resets (profile-specific)."""

    def after_read(self, table: Table, address: int, count: int, now: float) -> None:
        """Side effects of a read (e.g. Lighthouse clears NEW DATA when a record is read)."""

    def write(self, table: Table, address: int, values: list[int], now: float) -> ExcCodes | None:
        """Apply a write of several registers or coils in address order; stop at the first refusal."""
        for offset, value in enumerate(values):
            if (result := self.write_one(table, address + offset, value, now)) is not None:
                return result
        return None

    def image(self, table: Table, now: float) -> dict[int, int]:
        """Stored settings overlaid with computed values: what a read of `table` returns right now."""
        stored = {addr: value for (tbl, addr), value in self.stored.items() if tbl is table}
        return {**stored, **self.render(table, now)}

    def store(self, table: Table, address: int, value: int) -> None:
        """Remember a written setting so later reads return it."""
        self.stored[(table, address)] = u16(value)

    def stored_value(self, table: Table, address: int, default: int = 0) -> int:
        """A previously written setting, or `default`."""
        return self.stored.get((table, address), default)

    def calibration_due_s(self) -> int:
        """Calibration due date (Unix s): in the future, or in the past while the fault is injected."""
        overdue_days = self.model.faults.calibration_overdue_days
        if overdue_days is None:
            return self.calibration_due
        return int(self.model.device_time() - overdue_days * 86_400)


def put(image: dict[int, int], address: int, registers: tuple[int, ...] | list[int]) -> None:
    """Write consecutive registers into a rendered image starting at `address`."""
    for offset, value in enumerate(registers):
        image[address + offset] = value
