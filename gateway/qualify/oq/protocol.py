"""An OQ protocol file: test cases with a site, a timeline of steps and acceptance criteria.

The vocabulary is small on purpose. Device knowledge stays in the site files (which simulators, which
equipment) and in the simulators (which faults exist); a case only says what to do when and what must
be true afterwards, so a QA reviewer can read the YAML as the protocol it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from gateway.config import load_yaml_model

PROTOCOL_DIR = Path(__file__).resolve().parents[3] / "config" / "oq"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordFilter(_Strict):
    """Which journal records a condition or criterion is about (every field optional, all must match)."""

    equipment: str | None = None
    parameter: str | None = None
    kind: str | None = None
    value: Any = None
    quality: str | None = Field(default=None, description="exact quality name, or Good/Uncertain/Bad for a class")
    #: The lot context: a lot id, or ``""`` for a record that carries no lot.
    lot: str | None = None
    coi: str | None = None
    #: Text the record's detail must contain.
    detail: str | None = None
    #: True: the record keeps the raw bytes it came from (False: it keeps none).
    raw: bool | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.equipment is not None and record.get("equipment_id") != self.equipment:
            return False
        if self.parameter is not None and record.get("parameter") != self.parameter:
            return False
        if self.kind is not None and record.get("kind") != self.kind:
            return False
        if self.value is not None and record.get("value") != self.value:
            return False
        if self.lot is not None and (record.get("lot_id") or "") != self.lot:
            return False
        if self.coi is not None and record.get("coi_id") != self.coi:
            return False
        if self.detail is not None and self.detail not in (record.get("detail") or ""):
            return False
        if self.raw is not None and bool(record.get("raw_bytes")) != self.raw:
            return False
        if self.quality is not None:
            quality = str(record.get("quality", ""))
            if "_" in self.quality or self.quality not in ("Good", "Uncertain", "Bad"):
                return quality == self.quality
            return quality.split("_", 1)[0] == self.quality
        return True


class CountedRecords(RecordFilter):
    """Records matching the filter: exactly ``count``, or at least ``min_count``."""

    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> CountedRecords:
        if (self.count is None) == (self.min_count is None):
            raise ValueError("give exactly one of count or min_count")
        return self


class SimStateCheck(_Strict):
    """A number in a simulator's ``state()`` snapshot: at least ``min``, or exactly ``equals``."""

    sim: str
    field: str
    min: float | None = None
    equals: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> SimStateCheck:
        if (self.min is None) == (self.equals is None):
            raise ValueError("give exactly one of min or equals")
        return self

    def holds(self, value: float) -> bool:
        return value >= self.min if self.min is not None else value == self.equals

    def describe(self) -> str:
        bound = f">= {self.min:g}" if self.min is not None else f"= {self.equals:g}"
        return f"{self.sim} state {self.field} {bound}"


class Condition(_Strict):
    """What ``wait_for`` waits for, within ``timeout_s``."""

    records: CountedRecords | None = None
    #: Records stored by the MES stand-in for this gateway, at least this many.
    mes_stored: int | None = Field(default=None, ge=0)
    #: The committed journal's last seq, at least this much.
    committed: int | None = Field(default=None, ge=0)
    #: A sink's backlog (committed but not delivered), at least this much.
    backlog: int | None = Field(default=None, ge=0)
    #: Every committed record is stored by the MES stand-in.
    mes_caught_up: bool = False
    #: Just let time pass (seconds); for "nothing more must happen" cases.
    seconds: float | None = Field(default=None, ge=0, le=60)
    #: The gateway ends by itself (a refusal it stops on); with ``expect_refusal`` its error is the refusal.
    gateway_exited: bool = False
    #: A simulator's ``state()`` field reaches at least ``min`` (e.g. a NAK count).
    sim_state: SimStateCheck | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @model_validator(mode="after")
    def _something(self) -> Condition:
        given = [self.records, self.mes_stored, self.committed, self.backlog, self.seconds, self.sim_state]
        if sum(x is not None for x in given) + self.mes_caught_up + self.gateway_exited != 1:
            raise ValueError("wait_for needs exactly one of records, mes_stored, committed, backlog, mes_caught_up,"
                             " seconds, gateway_exited, sim_state")
        return self


class SimAction(_Strict):
    """A fault for a simulator: ``inject`` starts it, ``clear`` ends it, ``restore`` ends link faults."""

    sim: str
    fault: str | None = None
    #: Numbers, or a list of whole numbers (e.g. the counts a ``scripted_counts`` fault makes a counter carry).
    params: dict[str, float | list[int]] = Field(default_factory=dict)
    unit_id: int | None = None


class MesAction(_Strict):
    """Something the MES stand-in does: go down, come up, reject records, or drop them silently."""

    sim: str = "mes"
    action: Literal["go_down", "come_up", "reject", "fail", "hang", "clear"]
    params: dict[str, Any] = Field(default_factory=dict)


class BindLot(_Strict):
    """A lot bound to equipment through the identity service (two people, as the gateway requires)."""

    equipment: str
    lot: str
    performed_by: str = "oq-operator"
    verified_by: str = "oq-verifier"
    reason: str = "OQ context association"
    coi_id: str | None = None
    dins: list[str] = Field(default_factory=list)
    process_step: str | None = None


class EditSite(_Strict):
    """A change to the case's site file between runs: dotted paths (``equipment.0.poll_interval_s``) to values."""

    set: dict[str, Any] = Field(min_length=1)


class Cli(_Strict):
    """The gateway's command line run against the case's site file; ``{site}`` in an argument is its path,
    ``{work}`` the case's own folder (where a backup, an export or a report is written for the criteria).

    A non-zero exit is a refusal (its last stderr line); it fails the case unless the step expects one.
    """

    args: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0, le=300)


class ApiCall(_Strict):
    """A request to the running gateway's operator API, as a user with ``token`` would make it.

    ``{seq}`` in the path is the seq of the newest record matching ``seq_of``. A 4xx/5xx answer is a
    refusal (status and error); it fails the case unless the step expects one.
    """

    method: Literal["GET", "POST"] = "GET"
    path: str = Field(pattern=r"^/")
    token: str | None = None
    verifier_token: str | None = None
    body: dict[str, Any] | None = None
    seq_of: RecordFilter | None = None


class Step(_Strict):
    """One step of a case's timeline; exactly one action per step."""

    wait_for: Condition | None = None
    inject: SimAction | None = None
    clear: SimAction | None = None
    restore: SimAction | None = None
    mes: MesAction | None = None
    kill_gateway: bool = False
    restart_gateway: bool = False
    stop_gateway: bool = False
    bind_lot: BindLot | None = None
    #: SQL run against the journal once the gateway has stopped (a deliberate edit, to prove verify sees it).
    tamper: str | None = None
    #: Stop the simulator and start it again on the same endpoint (a device power-cycled).
    restart_sim: str | None = None
    edit_site: EditSite | None = None
    cli: Cli | None = None
    api: ApiCall | None = None
    #: The step must be refused (a bad DIN, a changed config, a role too low, a disk floor): the refusal is
    #: recorded for a ``refused`` criterion instead of failing the case.
    expect_refusal: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [self.wait_for, self.inject, self.clear, self.restore, self.mes, self.bind_lot, self.tamper,
                   self.restart_sim, self.edit_site, self.cli, self.api]
        n = sum(x is not None for x in actions) + self.kill_gateway + self.restart_gateway + self.stop_gateway
        if n != 1:
            raise ValueError("a step does exactly one thing: wait_for, inject, clear, restore, mes, kill_gateway,"
                             " restart_gateway, stop_gateway, bind_lot, tamper, restart_sim, edit_site, cli or api")
        if self.inject is not None and self.inject.fault is None:
            raise ValueError("inject needs a fault")
        if self.clear is not None and self.clear.fault is None:
            raise ValueError("clear needs a fault")
        return self

    def describe(self) -> str:
        """One readable line for progress output and the evidence."""
        if self.note:
            return self.note
        for name in ("wait_for", "inject", "clear", "restore", "mes", "bind_lot", "edit_site", "cli", "api"):
            value = getattr(self, name)
            if value is not None:
                shown = value.model_dump(exclude_defaults=True, exclude_none=True)
                for secret in ("token", "verifier_token"):  # who asked is the user the token names, not the token
                    if secret in shown:
                        shown[secret] = "***"
                return f"{name} {shown}"
        if self.tamper is not None:
            return f"tamper: {self.tamper}"
        if self.restart_sim is not None:
            return f"restart simulator {self.restart_sim}"
        return next(n for n in ("kill_gateway", "restart_gateway", "stop_gateway") if getattr(self, n))


class Threshold(_Strict):
    """Limit arithmetic redone from the record values: alarms exactly at each change of level."""

    equipment: str
    parameter: str
    action: float
    alert: float | None = None
    #: At least this many judged samples on each side of the action limit, so both branches ran.
    min_each_side: int = Field(default=1, ge=0)


class AuditCount(_Strict):
    action: str
    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)
    #: Only entries by this user.
    actor: str | None = None
    #: Only entries whose detail mentions each of these keys (e.g. ``[old, new]`` for a change).
    detail_keys: list[str] = Field(default_factory=list)


class Refused(_Strict):
    """Step ``step`` (1-based) was refused, and the refusal says ``contains``."""

    step: int = Field(ge=1)
    contains: str = ""


class NoneBetween(_Strict):
    """From each record matching ``after`` to the next matching ``until`` (or the end), none matches ``none``.

    "No Good value between communication lost and restored": a fault window holds no false data.
    """

    after: RecordFilter
    until: RecordFilter
    none: RecordFilter


class InOrder(_Strict):
    """A record matching each filter, each after the one before (by seq): the first match, then the first
    match of the next filter after it, and so on."""

    records: list[RecordFilter] = Field(min_length=2)


class Repeats(CountedRecords):
    """Records matching the filter that repeat an earlier matching record: same parameter, value and raw
    bytes (``raw_sha256``), i.e. the same thing the device said, received again and journalled again."""


class FileCount(_Strict):
    """Files in the case's folder matching ``glob`` (the journal a restore set aside, a report written)."""

    glob: str = Field(min_length=1)
    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> FileCount:
        if (self.count is None) == (self.min_count is None):
            raise ValueError("give exactly one of count or min_count")
        return self


class RestoredFrom(_Strict):
    """The journal is the backup ``file`` (in the case's folder) put back: the same records up to the same
    head hash, the backup's audit trail as the first entries of its own (same hashes), and after those only
    entries whose action is in ``then``."""

    file: str = Field(min_length=1)
    then: list[str] = Field(default_factory=lambda: ["journal.restored"])


class ExportTraceable(_Strict):
    """A JSONL export with raw bytes (``export --raw``) in the case's folder, checked line by line against
    the journal: every record there with the journal's hash, and every raw copy hashing to the
    ``raw_sha256`` its parsed record carries; at least ``min_raw`` raw copies (of ``lot`` when given)."""

    file: str = Field(min_length=1)
    lot: str | None = None
    min_raw: int = Field(default=1, ge=0)


class JsonValue(_Strict):
    """A value in a JSON file of the case's folder (the newest matching ``glob``) at a dotted ``path``."""

    glob: str = Field(min_length=1)
    path: str = Field(min_length=1)
    equals: Any


class Clock(_Strict):
    """Device time against receive time on one device's records: ``source_time - gateway_time`` between
    ``offset_min_s`` and ``offset_max_s`` on at least ``min_count`` records, both times kept on each, and
    neither time going backwards in seq order (a skewed device clock must not reorder the journal)."""

    equipment: str
    parameter: str | None = None
    offset_min_s: float
    offset_max_s: float
    min_count: int = Field(default=1, ge=1)


class SampleSpacing(_Strict):
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


class SimCount(_Strict):
    """The journal against the device: as many records matching ``records`` as the simulator's ``state()``
    number ``field`` says (samples it took, packets the host popped), give or take ``tolerance`` (samples
    taken before the gateway's first contact or while it stops)."""

    sim: str
    field: str
    records: RecordFilter
    tolerance: int = Field(default=0, ge=0)


class ValuesInOrder(_Strict):
    """The values of the records matching ``records``, in seq order, hold ``values`` as one unbroken run:
    known inputs came through exactly (no rounding, word order right), none lost or repeated between."""

    records: RecordFilter
    values: list[Any] = Field(min_length=1)


class Latency(_Strict):
    """End to end: each record's ``gateway_time`` (the gateway took the reading; the commit comes after) to
    the moment the runner first saw it stored at the MES stand-in, looked at every 50-200 ms: each figure
    is an upper bound on commit to MES receipt."""

    p95_max_s: float = Field(gt=0)
    #: At least this many records measured (a latency over nothing proves nothing).
    min_count: int = Field(default=1, ge=1)


class Resources(_Strict):
    """The gateway's CPU time over its run (as a fraction of one core) and its peak resident memory.

    A gateway run as a process is measured from the operating system's figures for that process; run
    in-process the figures include the runner and the simulators (an upper bound for the gateway)."""

    cpu_fraction_max: float = Field(gt=0)
    peak_rss_mb_max: float = Field(gt=0)


class Criterion(_Strict):
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
                  self.sample_spacing, self.sim_count, self.values_in_order, self.mes_identical, self.latency,
                  self.resources]
        if sum(x is not None for x in fields) + self.no_gaps != 1:
            raise ValueError("a criterion checks exactly one thing: records, no_gaps, mes_received_exactly, verify,"
                             " audit, no_records, threshold, min_committed, refused, in_order, none_between,"
                             " sim_state, repeats, files, restored_from, export_traceable, json_value, clock,"
                             " sample_spacing, sim_count, values_in_order, mes_identical, latency or resources")
        return self


class Pki(_Strict):
    """Certificates the case makes in its own folder before its site is loaded (a site checks that the
    files it names exist): ``clients`` are self-signed client key + certificate pairs, named in the site as
    ``${pki.NAME.cert}`` and ``${pki.NAME.key}``."""

    clients: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]] = Field(default_factory=list)


class Case(_Strict):
    id: str = Field(pattern=r"^OQ-\d{2}[a-z]?$")
    title: str
    requirements: list[str] = Field(min_length=1)
    #: A site file under config/oq/sites/ (name without .yaml, or a path relative to the protocol file).
    site: str
    #: "in_process" runs the gateway inside the runner; "process" as a ``cgt-gateway run`` it can kill.
    mode: Literal["in_process", "process"] = "in_process"
    pki: Pki = Field(default_factory=Pki)
    expected: str = Field(description="the acceptance criteria in words, for the reviewer")
    steps: list[Step] = Field(min_length=1)
    accept: list[Criterion] = Field(min_length=1)
    #: Plots to attach: "particles" (concentrations against limits) or "delivery" (committed vs delivered).
    #: "freezer": the chamber against the approved profile's tolerance band.
    plots: list[Literal["particles", "delivery", "freezer"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _kill_needs_process(self) -> Case:
        if any(s.kill_gateway for s in self.steps) and self.mode != "process":
            raise ValueError("kill_gateway needs mode: process")
        for step in self.accept:
            if step.refused is not None and not (
                step.refused.step <= len(self.steps) and self.steps[step.refused.step - 1].expect_refusal
            ):
                raise ValueError(f"refused: step {step.refused.step} is not a step with expect_refusal: true")
        return self


class Protocol(_Strict):
    title: str
    description: str = ""
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Protocol:
        seen: set[str] = set()
        for case in self.cases:
            if case.id in seen:
                raise ValueError(f"case id {case.id} appears twice")
            seen.add(case.id)
        return self


def protocol_path(name: str) -> Path:
    """A shipped protocol by name (``oq-core``) or a file path."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        return Path(name)
    return PROTOCOL_DIR / f"{name}.yaml"


def load_protocol(path: Path) -> Protocol:
    """The protocol file as a model; ConfigError with ``FILE:LINE: path: message`` for every problem."""
    return load_yaml_model(path, Protocol, shape="an OQ protocol is a mapping with title and cases")


def site_path(case: Case, protocol_file: Path) -> Path:
    """The site file a case runs on."""
    if "/" in case.site or case.site.endswith((".yaml", ".yml")):
        return (protocol_file.parent / case.site).resolve()
    return protocol_file.parent / "sites" / f"{case.site}.yaml"
