"""What a sink is: the contract between the forwarder and one northbound connection.

A sink never reads the journal itself and never keeps a position: the forwarder reads committed
records through the sink's durable cursor, hands them over in order as a :class:`SinkBatch`, and
moves the cursor only past records the sink has settled. So a sink is small::

    class MySink:
        name = "historian"
        async def connect(self) -> None: ...          # raise SinkError when the far end is unreachable
        async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None: ...
        async def close(self) -> None: ...            # idempotent

``write`` returns one :class:`Outcome` per record, in order (``None`` means every record was
accepted), or raises :class:`SinkError` when the whole batch could not be delivered (connection
lost, timeout, 5xx): the forwarder closes the sink, backs off and reconnects before resending.
Delivery is at-least-once on the wire; receivers make it exactly-once by ``(gateway_id, seq)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from gateway.config import BatchingConfig, RetryConfig, SinkConfig
from gateway.errors import ConfigError, GatewayError

__all__ = [
    "BatchingConfig", "Outcome", "RetryConfig", "Sink", "SinkBatch", "SinkConfig", "SinkContext", "SinkError",
    "SinkPlugin", "SinkType", "Verdict", "WireRecord",
]

#: One record as it goes on the wire: the journal's hashed payload members (every ProcessRecord field
#: and ``raw_sha256``) plus ``hash`` and ``delivery`` (``{"late": bool}``; not covered by the hash).
WireRecord = dict[str, Any]


class SinkError(GatewayError):
    """The batch could not be delivered at all; transient by nature (retried with backoff)."""


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    #: Permanent: the receiver will never take this record. It goes to the dead-letter list.
    REJECTED = "rejected"
    #: Transient: send it again later (with everything after it, in order).
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the receiver said about one record."""

    verdict: Verdict
    reason: str | None = None

    @classmethod
    def accepted(cls) -> Outcome:
        return _ACCEPTED

    @classmethod
    def rejected(cls, reason: str) -> Outcome:
        return cls(Verdict.REJECTED, reason)

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        return cls(Verdict.RETRY, reason)


_ACCEPTED = Outcome(Verdict.ACCEPTED)


@dataclass(frozen=True, slots=True)
class SinkBatch:
    """Consecutive committed records of one gateway, oldest first, as one send attempt."""

    gateway_id: str
    records: Sequence[WireRecord]
    #: 1 for the first send of these records, 2… for resends after a failure.
    attempt: int = 1
    #: Journal seqs are consecutive except where earlier attempts settled records in between.
    seqs: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.seqs:
            object.__setattr__(self, "seqs", tuple(r["seq"] for r in self.records))

    @property
    def first_seq(self) -> int:
        return self.seqs[0]

    @property
    def last_seq(self) -> int:
        return self.seqs[-1]

    @property
    def idempotency_key(self) -> str:
        """Stable for the same records whatever the attempt: ``<gateway_id>:<first_seq>-<last_seq>``."""
        return f"{self.gateway_id}:{self.first_seq}-{self.last_seq}"

    def __len__(self) -> int:
        return len(self.records)


@runtime_checkable
class Sink(Protocol):
    name: str

    async def connect(self) -> None: ...

    async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the runtime knows that a sink may need."""

    gateway_id: str
    #: The journal file, for sinks that show current values and start with the latest after a restart.
    journal_path: Path | None = None


class SinkPlugin(Protocol):
    """A sink type as registered under the ``cgt_gateway.sinks`` entry point group."""

    type: ClassVar[str] | str
    config_model: type[SinkConfig]

    def create(self, config: Any, context: SinkContext) -> Sink: ...


class SinkType:
    """The usual :class:`SinkPlugin`: a type name, its config model, and the sink class built from both.

    ``plugin = SinkType("http", HttpSinkConfig, HttpSink)`` is all a sink package exports.
    """

    def __init__(self, type_: str, config_model: type[SinkConfig], factory: Callable[[Any, SinkContext], Sink]) -> None:
        self.type = type_
        self.config_model = config_model
        self._factory = factory

    def create(self, config: Any, context: SinkContext) -> Sink:
        """A new, unconnected sink."""
        if not isinstance(config, self.config_model):
            raise ConfigError(
                f"sinks: {getattr(config, 'name', '?')}: type {getattr(config, 'type', '?')!r} "
                f"is not served by the {self.type} sink"
            )
        return self._factory(config, context)
