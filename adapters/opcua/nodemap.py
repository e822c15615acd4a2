"""The node map file: which variables of an OPC UA server are read, what they mean, how they are sampled.

A map extends the core's :class:`~gateway.points.DeviceMap` (what each point *means*) with where each
point *is*: a browse path of BrowseNames below the Objects folder, or a NodeId identifier, both in the
map's ``namespace_uri``. Namespace *indexes* are never written down: a server may renumber them at a
restart, so the adapter resolves the URI to an index on every connect.

A ``program:`` section names the points of a LADS ActiveProgram (state, run id, lot, template, step):
the adapter turns their changes into run_started / run_ended events and stamps the active lot and step
on every batch.

Errors come out as ``FILE:LINE: path: message`` lines, one per problem, raised as ConfigError.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from gateway.config import STRICT, load_yaml_model
from gateway.points import DeviceMap, PointSpec

_NODE_ID_TYPES = ("i=", "s=", "g=", "b=")


class OpcUaPoint(PointSpec):
    """One variable: its meaning (from PointSpec), where it is, and how the server samples it."""

    browse_path: str | None = Field(
        default=None, description="slash-separated BrowseNames below Objects, in the map's namespace"
    )
    node_id: str | None = Field(
        default=None, description="NodeId identifier in the map's namespace: i=1001, s=Temperature, g=..., b=..."
    )
    sampling_interval_ms: float | None = Field(
        default=None, ge=0, description="server sampling interval; default: the publishing interval"
    )
    deadband_abs: float | None = Field(default=None, gt=0, description="report a change only beyond this (absolute)")
    deadband_percent: float | None = Field(
        default=None, gt=0, le=100, description="report a change only beyond this % of the EURange"
    )
    queue_size: int = Field(
        default=10, ge=1, le=10_000, description="values the server queues per publish: rate x interval, plus margin"
    )

    @model_validator(mode="after")
    def _address_is_one(self) -> OpcUaPoint:
        if (self.browse_path is None) == (self.node_id is None):
            raise ValueError("give browse_path or node_id (exactly one)")
        if self.browse_path is not None:
            segments = self.browse_path.split("/")
            if any(not s.strip() for s in segments):
                raise ValueError(f"browse_path {self.browse_path!r} has an empty segment")
        if self.node_id is not None:
            if self.node_id.startswith(("ns=", "nsu=")):
                raise ValueError(
                    "node_id names no namespace (indexes change between server restarts): "
                    "the map's namespace_uri gives it; write e.g. s=Temperature"
                )
            if not self.node_id.startswith(_NODE_ID_TYPES) or len(self.node_id) < 3:
                raise ValueError(f"node_id {self.node_id!r} must start with i=, s=, g= or b=")
            if self.node_id.startswith("i=") and not self.node_id[2:].isdigit():
                raise ValueError(f"node_id {self.node_id!r}: a numeric identifier takes digits only")
        if self.deadband_abs is not None and self.deadband_percent is not None:
            raise ValueError("give deadband_abs or deadband_percent, not both")
        return self

    @property
    def address(self) -> str:
        """The wire address as written in the map: the browse path or the NodeId identifier."""
        return self.browse_path if self.browse_path is not None else str(self.node_id)


class ProgramSpec(BaseModel):
    """Which points carry a LADS ActiveProgram, so runs become events and lots reach the records."""

    model_config = STRICT

    state: str = Field(description="ActiveProgram/CurrentState (Running.* while a run is active)")
    run_id: str = Field(description="ActiveProgram/DeviceProgramRunId ('' when idle)")
    lot: str | None = Field(default=None, description="ActiveProgram/SupervisoryJobId: the MES lot id")
    template: str | None = Field(default=None, description="ActiveProgram/ProgramTemplateId")
    step: str | None = Field(default=None, description="ActiveProgram/CurrentStepName: the process step")
    active_states: list[str] | None = Field(
        default=None,
        description="states in which a run is going; leaving them ends the run (default: any Running.* state)",
    )

    def is_active(self, state: str) -> bool:
        if self.active_states is None:
            return state.startswith("Running")
        return state in self.active_states

    def point_names(self) -> list[str]:
        return [p for p in (self.state, self.run_id, self.lot, self.template, self.step) if p is not None]


class NodeMap(DeviceMap):
    """An OPC UA server's map. Every reference to a point is checked at load."""

    points: dict[str, OpcUaPoint]  # type: ignore[assignment]
    namespace_uri: str = Field(min_length=1, description="namespace of every browse path and node_id")
    program: ProgramSpec | None = None

    @model_validator(mode="after")
    def _program_points_exist(self) -> NodeMap:
        if self.program is not None:
            missing = [p for p in self.program.point_names() if p not in self.points]
            if missing:
                raise ValueError(f"program names points the map does not define: {', '.join(missing)}")
        if not self.points:
            raise ValueError("a node map needs at least one point")
        return self


def load_node_map(path: Path) -> NodeMap:
    """Load and check one map file; ConfigError lists every problem as ``FILE:LINE: path: message``."""
    return load_yaml_model(path, NodeMap, shape="a node map is a mapping with name:, namespace_uri:, points: ...")
