"""The site file's models. Adapters extend :class:`EquipmentConfig` with their wire fields.

Strict on purpose: an unknown key, a missing unit or a bad range is an error at load with the YAML
line, never a silently adjusted value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gateway.config._api import ApiConfig
from gateway.records import Isa95Path

#: Where the project's own register maps, node maps and limit tables live.
PROJECT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]

STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Relative paths in a site file are relative to that file, whatever the working directory."""
    base = (info.context or {}).get("config_dir")
    if value.is_absolute() or base is None:
        return value
    return (Path(base) / value).resolve()


def existing_data_file(value: str, context: dict[str, Any] | None, folder: str, what: str) -> str:
    """A map named in a site file (see :func:`data_file_path`) must exist: ValueError saying where it was looked for."""
    path = data_file_path(value, context, folder)
    if not path.is_file():
        raise ValueError(f"{what} {value!r} not found (looked for {path})")
    return value


def existing_file(value: Path | None, info: ValidationInfo) -> Path | None:
    """A file the site file names (a certificate, a secret): relative to the site file, and it must exist."""
    if value is None:
        return None
    path = resolve_path(value, info)
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


def data_file_path(value: str, context: dict[str, Any] | None, folder: str) -> Path:
    """Where a map named in a site file lives.

    A bare name is a file the project ships (``<project config>/<folder>/<name>.yaml``); anything with
    a slash or a ``.yaml``/``.yml`` suffix is the site's own file, relative to the site file.
    """
    context = context or {}
    if "/" not in value and not value.endswith((".yaml", ".yml")):
        return Path(context.get("project_config_dir") or PROJECT_CONFIG_DIR) / folder / f"{value}.yaml"
    path = Path(value)
    base_dir = context.get("config_dir")
    return path if path.is_absolute() or base_dir is None else (Path(base_dir) / path).resolve()


class ParticleLimitsConfig(BaseModel):
    """Which limit table applies to a counter's location, and the site's alert limits."""

    model_config = STRICT

    table: str = Field(
        default="eu-gmp-annex1-2022",
        description="limit table under config/limits/ (action limits by grade and state)",
    )
    grade: Literal["A", "B", "C", "D"]
    state: Literal["at_rest", "in_operation"] = Field(
        description="the room state the limits are taken for; at-rest and in-operation limits differ"
    )
    alert_limits_per_m3: dict[float, float] = Field(
        default_factory=dict,
        description="site alert limits by particle size in µm (e.g. {0.5: 2000}); set from PQ/trend data",
    )
    alert_fraction: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="alert limit as a fraction of the action limit, for sizes without an explicit alert limit",
    )


class ClockConfig(BaseModel):
    """How far a device clock may be from the gateway's before it is an alarm (ALCOA+ Contemporaneous).

    Judged on ``clock_offset_s`` (device time minus gateway time), which adapters fill where the device
    says what its clock reads. Set gateway-wide under ``clock:``; an equipment's own ``clock:`` overrides
    the keys it names.
    """

    model_config = STRICT

    max_offset_s: float | None = Field(
        default=60.0,
        gt=0,
        description="a device clock further than this from the gateway's, either way, raises a clock_drift alarm "
        "(equal is within); null: no drift alarm (a fast-forwarded simulator, a clock nobody can set)",
    )
    deadband_s: float = Field(
        default=1.0,
        ge=0,
        description="how far back inside the limit the offset must come to end the alarm, so jitter around the "
        "limit is one alarm, not many",
    )

    @model_validator(mode="after")
    def _deadband_inside(self) -> ClockConfig:
        if self.max_offset_s is not None and self.deadband_s >= self.max_offset_s:
            raise ValueError(f"deadband_s ({self.deadband_s:g}) must be below max_offset_s ({self.max_offset_s:g})")
        return self

    def overridden(self, by: ClockConfig | None) -> ClockConfig:
        """This gateway-wide setting with the keys an equipment's own ``clock:`` names put over it."""
        if by is None:
            return self
        return ClockConfig.model_validate({**self.model_dump(), **by.model_dump(exclude_unset=True)})


class EquipmentConfig(BaseModel):
    """What every equipment entry has, whatever protocol reaches it."""

    model_config = STRICT

    id: Identifier = Field(description="equipment id, unique in the site file; appears in every record")
    equipment_class: Identifier = Field(
        alias="class", description="equipment class, e.g. particle_counter, cell_processor"
    )
    kind: str = Field(description="the adapter that reaches it: modbus, opcua, serial, visa")
    isa95: Isa95Path | None = None
    enabled: bool = True
    poll_interval_s: float = Field(default=1.0, gt=0, le=86_400, description="seconds between reads")
    particle_limits: ParticleLimitsConfig | None = Field(
        default=None, description="limits to evaluate on a particle counter's concentrations"
    )
    identity: Literal["equipment", "specimen"] = Field(
        default="equipment",
        description=(
            "equipment: records belong to the lot bound to this equipment; specimen: each result names its "
            "own lot (a culture reader), checked against the lots bound anywhere"
        ),
    )
    clock: ClockConfig | None = Field(
        default=None,
        description="this equipment's clock-drift limit; the keys it names override the gateway-wide clock:",
    )


class GatewaySection(BaseModel):
    model_config = STRICT

    id: Identifier = Field(description="this gateway's id: half of every record's idempotency key")
    description: str = ""
    drain_on_stop_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="on a clean stop, how long the sinks may take to forward what is committed (the rest waits for "
        "the next start)",
    )


class JournalConfig(BaseModel):
    model_config = STRICT

    path: Path = Field(
        default=Path("data/journal.sqlite"), validate_default=True, description="SQLite file, relative to this file"
    )
    synchronous: Literal["full", "normal", "extra"] = Field(
        default="full",
        description="full: a record is committed only when it is on disk; normal survives a crash, not a power loss",
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="prune records older than this once every sink has taken them; unset keeps everything",
    )
    quota_mb: float | None = Field(
        default=None, gt=0, description="journal size that raises an alarm (the gateway keeps writing)"
    )
    min_free_mb: float = Field(
        default=256, ge=0, description="free disk below which new records are refused, loudly; 0 disables"
    )
    commit_window_ms: float = Field(
        default=0,
        ge=0,
        le=1000,
        description="how long an idle journal waits for more reads to share a commit: less CPU, more latency",
    )

    _resolve = field_validator("path")(resolve_path)


class SupervisorConfig(BaseModel):
    model_config = STRICT

    backoff_initial_s: float = Field(default=1.0, gt=0, description="first wait after a failure")
    backoff_max_s: float = Field(default=30.0, gt=0, description="cap of the exponential backoff")
    backoff_jitter: float = Field(default=0.2, ge=0, le=1, description="± fraction of random jitter per wait")


class SimulatorEntry(BaseModel):
    """A simulator the gateway starts in-process (demo and qualification only)."""

    model_config = STRICT

    name: Identifier
    kind: str = Field(description="simulator kind, e.g. particle-counter")
    options: dict[str, Any] = Field(default_factory=dict)


class SiteBase(BaseModel):
    """The site file without its equipment; the loader adds the equipment union of the installed adapters."""

    model_config = STRICT

    gateway: GatewaySection
    journal: JournalConfig = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    supervisor: SupervisorConfig = SupervisorConfig()
    clock: ClockConfig = Field(
        default_factory=ClockConfig,
        description="how far a device clock may be from the gateway's before a clock_drift alarm",
    )
    simulators: list[SimulatorEntry] = Field(default_factory=list)
    api: ApiConfig | None = Field(
        default=None, description="the local operator API and dashboard; left out, the gateway serves no HTTP"
    )
