"""The gateway's one error hierarchy. A leaf module: it imports nothing from the project.

    GatewayError
    ├── ConfigError              a site file, register map or tag map is wrong (raised at load)
    ├── DeviceError              something between the gateway and one piece of equipment failed
    │   ├── CommunicationError   no answer, connection refused or lost, timeout: the link is down
    │   ├── ProtocolError        an answer came but is malformed: bad frame, wrong unit id or
    │   │                        function code, bad check character
    │   └── DeviceReportedError  the device answered with an error of its own (Modbus exception)
    ├── DecodeError              registers or bytes do not decode to the declared type
    ├── JournalError             the local journal cannot be opened or written
    │   └── IntegrityError       the hash chain or the sequence is broken
    └── SimulatorError           a simulator cannot start (a port taken, socat missing)

Adapters translate library exceptions at their boundary (`raise CommunicationError(...) from exc`);
no library exception crosses it. Every DeviceError names the equipment and the wire address, so a log
line or a bad-quality record says by itself what happened where.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A configuration file is wrong. Each problem is one line: `FILE:LINE: path.to.field: message`."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DeviceError(GatewayError):
    """Base for failures talking to one device. `quality` is the OPC UA status the gap is recorded with."""

    quality = "Bad_DeviceFailure"

    def __init__(self, message: str, *, equipment_id: str = "", address: str = "") -> None:
        self.equipment_id = equipment_id
        self.address = address
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = " ".join(part for part in (self.equipment_id, self.address) if part)
        return f"{where}: {self.message}" if where else self.message


class CommunicationError(DeviceError):
    """The link to the device is down or the device did not answer in time."""

    quality = "Bad_CommunicationError"


class DeviceTimeout(CommunicationError):
    """The link is there but the device did not answer within its timeout: a silent or hung device."""

    quality = "Bad_Timeout"


class ProtocolError(DeviceError):
    """The device answered with something the protocol does not allow."""

    quality = "Bad_CommunicationError"


class DeviceReportedError(DeviceError):
    """The device answered with an error of its own, e.g. a Modbus exception response."""

    quality = "Bad_DeviceFailure"

    def __init__(self, message: str, *, code: int | None = None, equipment_id: str = "", address: str = "") -> None:
        self.code = code
        super().__init__(message, equipment_id=equipment_id, address=address)


class DecodeError(GatewayError):
    """Registers or bytes do not decode to the declared type (wrong count, invalid text, NaN)."""


class JournalError(GatewayError):
    """The journal cannot be opened, written or read."""


class IntegrityError(JournalError):
    """The journal's sequence or hash chain is broken; `seq` is the first record found bad."""

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        self.seq = seq
        super().__init__(message)


class SimulatorError(GatewayError):
    """A simulator cannot start or be reached."""


def gateway_error_in(exc: BaseException) -> GatewayError | None:
    """The gateway error something ended on, also from inside a task group's exception group."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = gateway_error_in(inner)
            if found is not None:
                return found
    return None
