"""What every simulator is: ``async with Sim(...) as sim`` starts it, and stops it whatever happened.

A start that fails half-way (the port is taken after the pty was made) is stopped too, so nothing it
opened is left behind; ``stop`` must therefore be safe after a failed or partial start, and twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Simulator(ABC):
    @abstractmethod
    async def start(self) -> None:
        """Open the endpoint and begin the device's behaviour; SimulatorError when it cannot."""

    @abstractmethod
    async def stop(self) -> None:
        """Close everything start opened. Idempotent, and safe after a failed start."""

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
