"""One instrument's VISA session, and the one thread every PyVISA call to it runs in.

PyVISA blocks for the whole instrument round trip, so no call runs on the event loop: each session
owns a single-thread executor, which also serialises the calls (one at a time per instrument, as a
SCPI instrument expects; PyVISA sessions are not documented as thread-safe). A hung instrument holds
only its own thread, and only until its timeout; other instruments and the loop go on.

Every library failure leaves this module as a gateway error naming the equipment, the resource and
the command: a timeout, a refused or lost connection is a CommunicationError.

PyVISA's resource manager is one object per process (``ResourceManager("@py")`` returns the same one
every time, and closing it closes every instrument's session), so it is opened once, under a lock, and
never closed here: each session closes only its own resource.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pyvisa
from pyvisa.constants import BufferOperation
from pyvisa.errors import VisaIOError
from pyvisa.resources import MessageBasedResource, SerialInstrument

from gateway.errors import CommunicationError, DeviceTimeout

T = TypeVar("T")

_RESOURCE_MANAGER_LOCK = threading.Lock()
#: At most this many stray lines are dropped at once: an instrument that never stops talking is not drained forever.
MAX_STRAY_LINES = 32


@dataclass(frozen=True)
class Discarded:
    """What :meth:`VisaSession.discard_pending` dropped: reply lines (a serial buffer counts as one) and bytes."""

    lines: int = 0
    size: int = 0


def _resource_manager() -> pyvisa.ResourceManager:
    """The process's pyvisa-py resource manager (never lists resources: discovery costs about a second)."""
    with _RESOURCE_MANAGER_LOCK:
        return pyvisa.ResourceManager("@py")


class VisaSession:
    """A message-based VISA resource, opened, used and closed in its own thread."""

    def __init__(
        self,
        resource: str,
        *,
        equipment_id: str,
        timeout_s: float,
        read_termination: str,
        write_termination: str,
        serial: dict[str, Any] | None = None,
    ) -> None:
        self.resource = resource
        self.equipment_id = equipment_id
        self.timeout_s = timeout_s
        self._options: dict[str, Any] = {
            "read_termination": read_termination,
            "write_termination": write_termination,
            "timeout": round(timeout_s * 1000),
            **(serial or {}),
        }
        self._termination = read_termination.encode("ascii")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"visa-{equipment_id}")
        self._instrument: MessageBasedResource | None = None

    async def open(self) -> None:
        """Open the resource; CommunicationError if the instrument cannot be reached."""
        await self._call("open", self._open)

    async def query(self, command: str) -> bytes:
        """Send ``command`` and return its reply line as received, without the termination."""
        return await self._call(command, self._query, command)

    async def write(self, command: str) -> None:
        """Send a command that has no reply."""
        await self._call(command, self._write, command)

    async def discard_pending(self, wait_s: float = 0.05) -> Discarded:
        """Drop reply lines nobody asked for, so the next query reads its own reply.

        After a reply out of step (a stray line end splits one reply in two) every later query would read
        the previous one's leftover until a reconnect. Reads with a ``wait_s`` timeout until nothing more
        arrives (at most :data:`MAX_STRAY_LINES` lines): costs ``wait_s`` when nothing is pending.
        """
        return await self._call("discard pending replies", self._discard_pending, wait_s)

    async def close(self) -> None:
        """Close the resource and end the thread. Safe to call twice; waits at most for a call in progress
        to time out (it holds the thread), so a closed session never leaves a call behind."""
        if self._executor is None:
            return
        executor, self._executor = self._executor, None  # type: ignore[assignment]
        future = asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=False)
        await asyncio.shield(future)

    # -- in the session's thread ----------------------------------------------------------------
    def _open(self) -> None:
        instrument = _resource_manager().open_resource(
            self.resource, open_timeout=self._options["timeout"], **self._options
        )
        if not isinstance(instrument, MessageBasedResource):
            instrument.close()
            raise CommunicationError(
                "not a message-based resource: SCPI needs SOCKET, INSTR or ASRL",
                equipment_id=self.equipment_id, address=self.resource,
            )
        if isinstance(instrument, SerialInstrument):
            # a reply that arrived after an earlier session gave up would answer the next query
            instrument.flush(BufferOperation.discard_read_buffer)
        self._instrument = instrument

    def _query(self, command: str) -> bytes:
        instrument = self._opened()
        instrument.write(command)
        reply = instrument.read_raw()
        return reply[: -len(self._termination)] if reply.endswith(self._termination) else reply

    def _write(self, command: str) -> None:
        self._opened().write(command)

    def _discard_pending(self, wait_s: float) -> Discarded:
        instrument = self._opened()
        lines = size = 0
        if isinstance(instrument, SerialInstrument):
            size = instrument.bytes_in_buffer
            lines = 1 if size else 0
            instrument.flush(BufferOperation.discard_read_buffer)
        timeout = instrument.timeout
        instrument.timeout = max(1, round(wait_s * 1000))
        try:
            for _ in range(MAX_STRAY_LINES):
                try:
                    reply = instrument.read_raw()
                except VisaIOError as exc:
                    if exc.abbreviation == "VI_ERROR_TMO":
                        break  # nothing more arrived within wait_s: in step again
                    raise
                lines += 1
                size += len(reply)
        finally:
            instrument.timeout = timeout
        return Discarded(lines, size)

    def _close(self) -> None:
        instrument, self._instrument = self._instrument, None
        if instrument is not None:
            try:
                instrument.close()
            except (VisaIOError, OSError):
                pass  # the link is already gone; there is nothing left to release

    def _opened(self) -> MessageBasedResource:
        if self._instrument is None:
            raise CommunicationError("not connected", equipment_id=self.equipment_id, address=self.resource)
        return self._instrument

    # -- translation at the boundary ---------------------------------------------------------------
    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise CommunicationError("session closed", equipment_id=self.equipment_id, address=self.resource)
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        try:
            return await future
        except VisaIOError as exc:
            if exc.abbreviation == "VI_ERROR_TMO":
                raise DeviceTimeout(f"no reply to {what!r} within {self.timeout_s:g} s",
                                    equipment_id=self.equipment_id, address=self.resource) from exc
            message = f"{what!r} failed: {exc.abbreviation} ({exc.description})"
            raise CommunicationError(message, equipment_id=self.equipment_id, address=self.resource) from exc
        except (OSError, ValueError) as exc:  # pyvisa-py lets socket and serial errors through
            raise CommunicationError(
                f"{what!r} failed: {exc}", equipment_id=self.equipment_id, address=self.resource
            ) from exc
