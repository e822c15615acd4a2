"""The two data contracts: RawReading (adapter → core) and ProcessRecord (core → journal → sinks).

A RawReading is what one point of one device said on the wire, already decoded to a native value
by the adapter but not yet given a meaning. A RecordDraft is a normalised reading before the journal
gives it identity and integrity; a ProcessRecord is a committed draft: `(gateway_id, seq)` is its
idempotency key everywhere downstream and `hash` chains it to the record before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

SCHEMA_VERSION = 1


class Quality(StrEnum):
    """OPC UA status codes (Part 4 / Part 8 names), used for every protocol.

    The prefix is the severity; the rest is the sub-code a reviewer reads to learn why.
    """

    GOOD = "Good"
    UNCERTAIN = "Uncertain"
    UNCERTAIN_LAST_USABLE_VALUE = "Uncertain_LastUsableValue"
    UNCERTAIN_SENSOR_NOT_ACCURATE = "Uncertain_SensorNotAccurate"
    UNCERTAIN_ENGINEERING_UNITS_EXCEEDED = "Uncertain_EngineeringUnitsExceeded"
    UNCERTAIN_SUB_NORMAL = "Uncertain_SubNormal"
    BAD = "Bad"
    BAD_CONFIGURATION_ERROR = "Bad_ConfigurationError"
    BAD_NOT_CONNECTED = "Bad_NotConnected"
    BAD_DEVICE_FAILURE = "Bad_DeviceFailure"
    BAD_SENSOR_FAILURE = "Bad_SensorFailure"
    BAD_COMMUNICATION_ERROR = "Bad_CommunicationError"
    BAD_OUT_OF_SERVICE = "Bad_OutOfService"
    BAD_DECODING_ERROR = "Bad_DecodingError"
    BAD_TIMEOUT = "Bad_Timeout"

    @property
    def severity(self) -> Literal["good", "uncertain", "bad"]:
        return _SEVERITY[self]

    @property
    def is_good(self) -> bool:
        return _RANK[self] == 2

    def worst(self, other: Quality) -> Quality:
        """The worse of two qualities (bad < uncertain < good), keeping the first on a tie."""
        return other if _RANK[other] < _RANK[self] else self


_SEVERITY: dict[Quality, Literal["good", "uncertain", "bad"]] = {
    q: q.value.split("_", 1)[0].lower() for q in Quality  # type: ignore[misc]
}
_RANK = {q: {"bad": 0, "uncertain": 1, "good": 2}[_SEVERITY[q]] for q in Quality}


class Kind(StrEnum):
    """What a record is: a sampled value, a discrete state, something that happened, or an alarm."""

    MEASUREMENT = "measurement"
    STATE = "state"
    EVENT = "event"
    ALARM = "alarm"


#: A reading's typed value. Strict: a number is never carried as a formatted string.
Value = StrictBool | StrictInt | StrictFloat | StrictStr | None


@dataclass(slots=True)
class RawReading:
    """One point of one device as the adapter read it. Treat it as immutable once yielded.

    A plain slots dataclass, not a model and not frozen: adapters create many of these on the hot
    path (a frozen dataclass costs about five times as much to build) and the core validates once,
    when it builds the record.
    """

    equipment_id: str
    #: The key of this point in the equipment's map (register map, tag map).
    point: str
    #: The device-native address as a URI, e.g. ``modbus+tcp://127.0.0.1:5020/1/input/8``.
    source: str
    value: Any
    gateway_time: datetime
    quality: Quality = Quality.GOOD
    source_time: datetime | None = None
    #: The bytes or registers as they came off the wire (ALCOA "original").
    raw: bytes | None = None
    #: Why the quality is not Good, in words, when the protocol says more than the status code.
    detail: str | None = None
    #: When a server in between (an OPC UA server) stamped the value, if the protocol says.
    server_time: datetime | None = None
    #: Which device result this reading is a version of (message protocols), and on a correction
    #: which version it replaces: see ``RecordDraft.result_key`` and ``RecordDraft.corrects``.
    result_key: str | None = None
    corrects: str | None = None


@dataclass(slots=True)
class ReadingBatch:
    """What one read of a device returned, handed to the core as one unit.

    The core commits the whole batch in one journal transaction and only then calls the adapter's
    ``acknowledge`` with it, so a device-side acknowledgement (a queue pop, an ASTM ACK) never runs
    ahead of durability. ``token`` is the adapter's own note of what to acknowledge.
    """

    equipment_id: str
    readings: list[RawReading]
    token: Any = None
    #: Device-level facts of this read that are not points: (name, detail), e.g. a restart.
    events: list[tuple[str, str]] = field(default_factory=list)
    #: The lot and process step the device itself reports for this read (an OPC UA LADS program's
    #: SupervisoryJobId and step); they go on every record of the batch.
    lot_id: str | None = None
    process_step: str | None = None
    #: Device clock minus gateway clock, in seconds, as the adapter last compared them (a device that
    #: says what its clock reads); None when the device has no clock or it was never compared. It goes on
    #: every record of the batch as ``clock_offset_s`` and feeds the clock-drift alarm.
    clock_offset_s: float | None = None


_MODEL = ConfigDict(frozen=True, extra="forbid", ser_json_timedelta="float")

#: Record fields left out of the hashed payload when null (fields added after schema 1).
OMITTED_WHEN_NULL = ("result_key", "corrects")
#: The value of ``corrects`` when the corrected version was not received by this gateway run.
UNKNOWN_ORIGINAL = "unknown"


def _is_none(value: object) -> bool:
    return value is None


class Isa95Path(BaseModel):
    """Where the equipment stands in the ISA-95 hierarchy."""

    model_config = _MODEL

    site: str
    area: str
    unit: str


class RecordDraft(BaseModel):
    """A normalised reading before it is committed: everything but identity and integrity."""

    model_config = _MODEL

    schema_version: Literal[1] = SCHEMA_VERSION
    equipment_id: str
    equipment_class: str
    isa95: Isa95Path | None = None
    parameter: str
    source: str
    kind: Kind
    value: Value
    unit: str | None = Field(default=None, description="UCUM code: Cel, %, /m3, [ft_i]3/min, s")
    quality: Quality
    source_time: AwareDatetime | None = None
    server_time: AwareDatetime | None = Field(
        default=None, description="when a server in between (OPC UA ServerTimestamp) stamped the value"
    )
    gateway_time: AwareDatetime
    clock_offset_s: float | None = Field(
        default=None, description="source_time - gateway_time when the device clock was last compared"
    )
    lot_id: str | None = None
    coi_id: str | None = None
    din: str | None = None
    process_step: str | None = None
    detail: str | None = Field(default=None, description="one readable line saying why, for non-Good records")
    config_hash: str
    # Added after schema 1 was fixed: left out of the hashed payload (and so of the wire) when null,
    # so every record without them hashes and verifies byte for byte as before (OMITTED_WHEN_NULL).
    result_key: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "the device result this record is a version of (ASTM: equipment/specimen/bottle/test); the same on "
            "a re-send and on a correction, so a receiver groups versions by it and orders them by seq"
        ),
    )
    corrects: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "set on a correction only (ASTM R.9 = C): the raw_sha256 of the version of result_key it replaces, "
            "or 'unknown' when this gateway has not received that version since it started"
        ),
    )


#: Every field of a draft in order, each with its default (None for a required one): the start of
#: a row the hot path fills in and hands to :func:`trusted_draft` whole.
DRAFT_FIELDS: dict[str, Any] = {
    name: None if f.is_required() else f.get_default() for name, f in RecordDraft.model_fields.items()
}
_set = object.__setattr__


def trusted_draft(fields: dict[str, Any]) -> RecordDraft:
    """The draft validation would return for ``fields``, built without validating them again.

    For the hot path, where the core builds each record from values it has already checked (the
    equipment's identity once per pipeline, device values once per read): a tenth of the cost of
    ``model_validate``. ``fields`` is a copy of :data:`DRAFT_FIELDS` with every required field set
    and becomes the draft's own (do not change it afterwards); anything else, a dict with a field
    missing or one too many, goes through full validation, which decides.
    """
    if len(fields) != len(DRAFT_FIELDS):
        return RecordDraft.model_validate(fields)
    draft = RecordDraft.__new__(RecordDraft)
    _set(draft, "__dict__", fields)
    _set(draft, "__pydantic_fields_set__", set(fields))
    _set(draft, "__pydantic_extra__", None)
    _set(draft, "__pydantic_private__", None)
    return draft


class ProcessRecord(RecordDraft):
    """A committed record. ``(gateway_id, seq)`` is unique and gap-free per gateway."""

    gateway_id: str
    seq: Annotated[int, Field(ge=1)]
    prev_hash: str
    hash: str


def utc_now() -> datetime:
    """The gateway clock, always aware UTC."""
    return datetime.now(UTC)


def utc_from_timestamp(seconds: float) -> datetime:
    """A device's Unix time as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)
