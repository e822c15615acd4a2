"""Acceptance criteria as a protocol states them: what must be true of the journal, its audit trail, the
MES copies, the case's files and the devices once the case's steps have run; exactly one thing each.
How each is judged is in :mod:`gateway.qualify.oq.criteria`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.qualify.oq.filters import CountedRecords, RecordFilter, SimStateCheck, Strict


class Threshold(Strict):
    """Limit arithmetic redone from the record values: alarms exactly at each change of level."""

    equipment: str
    parameter: str
    action: float
    alert: float | None = None
    #: At least this many judged samples on each side of the action limit, so both branches ran.
    min_each_side: int = Field(default=1, ge=0)


class AuditCount(Strict):
    action: str
    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)
    #: Only entries by this user.
    actor: str | None = None
    #: Only entries whose detail mentions each of these keys (e.g. ``[old, new]`` for a change).
    detail_keys: list[str] = Field(default_factory=list)


class Refused(Strict):
    """Step ``step`` (1-based) was refused, and the refusal says ``contains``."""

    step: int = Field(ge=1)
    contains: str = ""


class NoneBetween(Strict):
    """From each record matching ``after`` to the next matching ``until`` (or the end), none matches ``none``.

    "No Good value between communication lost and restored": a fault window holds no false data.
    """

    after: RecordFilter
    until: RecordFilter
    none: RecordFilter


class InOrder(Strict):
    """A record matching each filter, each after the one before (by seq): the first match, then the first
    match of the next filter after it, and so on."""

    records: list[RecordFilter] = Field(min_length=2)


class Repeats(CountedRecords):
    """Records matching the filter that repeat an earlier matching record: same parameter, result_key,
    value and raw bytes (``raw_sha256``), i.e. the same thing the device said, received again and journalled
    again."""


class Corrections(CountedRecords):
    """Corrections among the records matching the filter (records carrying ``corrects``), each judged
    against the journal before it: it must name, by ``raw_sha256``, an earlier record of the same
    result_key and parameter. ``count``/``min_count`` is how many such links change the value (the
    corrected result; items a correction repeats unchanged link too and are shown apart); ``unknown`` is
    how many say ``corrects: unknown`` (an original this gateway never received). A link to a hash no
    earlier record of that key has fails the criterion, whatever the counts."""

    unknown: int = Field(default=0, ge=0)


class FileCount(Strict):
    """Files in the case's folder matching ``glob`` (the journal a restore set aside, a report written)."""

    glob: str = Field(min_length=1)
    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> FileCount:
        if (self.count is None) == (self.min_count is None):
            raise ValueError("give exactly one of count or min_count")
        return self


class RestoredFrom(Strict):
    """The journal is the backup ``file`` (in the case's folder) put back: the same records up to the same
    head hash, the backup's audit trail as the first entries of its own (same hashes), and after those only
    entries whose action is in ``then``."""

    file: str = Field(min_length=1)
    then: list[str] = Field(default_factory=lambda: ["journal.restored"])


class ExportTraceable(Strict):
    """A JSONL export with raw bytes (``export --raw``) in the case's folder, checked line by line against
    the journal: every record there with the journal's hash, and every raw copy hashing to the
    ``raw_sha256`` its parsed record carries; at least ``min_raw`` raw copies (of ``lot`` when given)."""

    file: str = Field(min_length=1)
    lot: str | None = None
    min_raw: int = Field(default=1, ge=0)


class JsonValue(Strict):
    """A value in a JSON file of the case's folder (the newest matching ``glob``) at a dotted ``path``."""

    glob: str = Field(min_length=1)
    path: str = Field(min_length=1)
    equals: Any


class Clock(Strict):
    """Device time against receive time on one device's records: ``source_time - gateway_time`` between
    ``offset_min_s`` and ``offset_max_s`` on at least ``min_count`` records, both times kept on each, and
    neither time going backwards in seq order (a skewed device clock must not reorder the journal)."""

    equipment: str
    parameter: str | None = None
    offset_min_s: float
    offset_max_s: float
    min_count: int = Field(default=1, ge=1)
    #: The device clock was set back on purpose (a skew cleared): its times may go backwards in seq order,
    #: but no device sample (parameter, device time, value) may be journalled twice, and the receive time
    #: still never goes back.
    allow_device_time_back: bool = False


class ClockOffset(Strict):
    """The device clock's offset as the gateway compared it (each record's ``clock_offset_s``, the device
    clock minus the gateway's) on one device's records in a window of the journal: after the first record
    matching ``after`` and before the first matching ``before`` after that (each bound optional)."""

    equipment: str
    parameter: str | None = None
    after: RecordFilter | None = None
    before: RecordFilter | None = None
    #: At least ``min_count`` records of the window carry an offset within ``min_s``..``max_s``.
    min_s: float | None = None
    max_s: float | None = None
    min_count: int = Field(default=1, ge=1)
    #: No two offsets of the window further apart than this: the device clock, read in UTC, keeps pace
    #: with the gateway's (a local clock read without its zone's DST rules jumps by an hour).
    max_spread_s: float | None = Field(default=None, ge=0)
    #: Comparisons on both sides of this instant of device time: each change of the offset along the
    #: records is a comparison, at device time = the receive time of its first record + the offset.
    spans: datetime | None = None

    @model_validator(mode="after")
    def _something(self) -> ClockOffset:
        if (self.min_s is None) != (self.max_s is None):
            raise ValueError("give both min_s and max_s, or neither")
        if self.min_s is None and self.max_spread_s is None:
            raise ValueError("give min_s and max_s, or max_spread_s")
        if self.spans is not None and self.spans.tzinfo is None:
            raise ValueError("spans needs its UTC offset (e.g. 2025-03-30T01:00:00Z)")
        return self


class SampleSpacing(Strict):
    """The device's own sample times (``source_time``) of Good records of one parameter: no step longer
    than ``max_gap_s`` between consecutive samples, over at least ``min_count`` samples: nothing the
    device buffered was lost, whatever happened to the link."""

    equipment: str
    parameter: str
    max_gap_s: float = Field(gt=0)
    min_count: int = Field(default=2, ge=2)
    #: No two Good records of the parameter with the same device sample time (nothing read twice); for a
    #: device that stamps each sample with a distinct time.
    unique: bool = False


class SimCount(Strict):
    """The journal against the device: as many records matching ``records`` as the simulator's ``state()``
    number ``field`` says (samples it took, packets the host popped), give or take ``tolerance`` (samples
    taken before the gateway's first contact or while it stops)."""

    sim: str
    field: str
    records: RecordFilter
    tolerance: int = Field(default=0, ge=0)


class ValuesInOrder(Strict):
    """The values of the records matching ``records``, in seq order, hold ``values`` as one unbroken run:
    known inputs came through exactly (no rounding, word order right), none lost or repeated between."""

    records: RecordFilter
    values: list[Any] = Field(min_length=1)


class Latency(Strict):
    """End to end: each record's ``gateway_time`` (the gateway took the reading; the commit comes after) to
    the moment the runner first saw it stored at the MES stand-in, looked at every 50-200 ms: each figure
    is an upper bound on commit to MES receipt."""

    p95_max_s: float = Field(gt=0)
    #: At least this many records measured (a latency over nothing proves nothing).
    min_count: int = Field(default=1, ge=1)


class Resources(Strict):
    """The gateway's CPU time over its run (as a fraction of one core) and its peak resident memory.

    A gateway run as a process is measured from the operating system's figures for that process; run
    in-process the figures include the runner and the simulators (an upper bound for the gateway)."""

    cpu_fraction_max: float = Field(gt=0)
    peak_rss_mb_max: float = Field(gt=0)


class Criterion(Strict):
    """One acceptance criterion; exactly one field set."""

    records: CountedRecords | None = None
    #: The committed seqs are 1..last with none missing or repeated.
    no_gaps: bool = False
    #: Every committed record reached the MES stand-in exactly once, in seq order, with its original times.
    mes_received_exactly: Literal["committed"] | None = None
    verify: Literal["ok", "broken"] | None = None
    audit: AuditCount | None = None
    #: No record matching these filters (e.g. Good quality during a fault window does not count here).
    no_records: RecordFilter | None = None
    threshold: Threshold | None = None
    #: The committed journal holds at least this many records.
    min_committed: int | None = Field(default=None, ge=0)
    refused: Refused | None = None
    in_order: InOrder | None = None
    none_between: NoneBetween | None = None
    #: A simulator's state at the end of the case (what the device saw: NAKs, retransmissions, queries).
    sim_state: SimStateCheck | None = None
    repeats: Repeats | None = None
    files: FileCount | None = None
    restored_from: RestoredFrom | None = None
    export_traceable: ExportTraceable | None = None
    json_value: JsonValue | None = None
    clock: Clock | None = None
    clock_offset: ClockOffset | None = None
    corrections: Corrections | None = None
    sample_spacing: SampleSpacing | None = None
    sim_count: SimCount | None = None
    values_in_order: ValuesInOrder | None = None
    #: Every committed record's MES copy equals the journal's record field by field (values, types, units,
    #: quality, times), not only by hash.
    mes_identical: Literal["committed"] | None = None
    latency: Latency | None = None
    resources: Resources | None = None

    @model_validator(mode="after")
    def _one(self) -> Criterion:
        fields = [self.records, self.mes_received_exactly, self.verify, self.audit, self.no_records, self.threshold,
                  self.min_committed, self.refused, self.in_order, self.sim_state, self.none_between, self.repeats,
                  self.files, self.restored_from, self.export_traceable, self.json_value, self.clock,
                  self.clock_offset, self.corrections, self.sample_spacing, self.sim_count, self.values_in_order,
                  self.mes_identical, self.latency, self.resources]
        if sum(x is not None for x in fields) + self.no_gaps != 1:
            raise ValueError("a criterion checks exactly one thing: records, no_gaps, mes_received_exactly, verify,"
                             " audit, no_records, threshold, min_committed, refused, in_order, none_between,"
                             " sim_state, repeats, files, restored_from, export_traceable, json_value, clock,"
                             " clock_offset, corrections, sample_spacing, sim_count, values_in_order, mes_identical,"
                             " latency or resources")
        return self
