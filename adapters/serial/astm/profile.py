"""An instrument profile: where each item of a result message is, and what it means. Data, loaded from YAML.

A profile is a device map (what each point means: parameter, unit, kind, valid range) whose points
also say where they are in a message, with a selector::

    specimen_id:       {record: O, field: 3, component: 1}          # O.3.1
    bottle_id:         {record: C, field: 4, key: BOTTLE}           # the component after "BOTTLE" in C.4
    time_to_detection: {record: R, test: TTD, field: 4}             # R.4 of the R record whose test is TTD

Two points have no selector: the adapter fills them. ``message`` is one record per message with all
its frames as raw bytes (value ``received``, ``rejected`` or ``discarded``); ``link`` is a link event (a
NAK, a duplicate frame, line noise). The lot a result names is checked by the core's chain of identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from gateway.config import STRICT, load_yaml_model
from gateway.points import DeviceMap, PointSpec

BUILT_IN = ("message", "link")

#: Version strings seen in H.13 in the field; a profile may list more.
DEFAULT_VERSIONS = (
    "LIS2-A2", "LIS2-A", "LIS02-A2", "1394-97", "E 1394-97", "E1394-97", "ASTM E1394-97", "1394-91", "E1394-91",
)


class Selector(BaseModel):
    """Where one item is: a record type, a field (E1394 numbering), and a component or a key."""

    model_config = STRICT

    record: Literal["H", "P", "O", "R", "C", "Q", "M", "S", "L"]
    field: int = Field(ge=1, le=64, description="field number as in E1394 (field 1 is the record type)")
    component: int = Field(default=1, ge=1, le=64, description="component within the field (1-based)")
    key: str | None = Field(
        default=None, min_length=1, description="take the component that follows the component equal to this"
    )
    test: str | None = Field(
        default=None, min_length=1, description="R records only: the one whose test id (R.3) is this code"
    )

    @model_validator(mode="after")
    def _test_on_results(self) -> Selector:
        if self.test is not None and self.record != "R":
            raise ValueError("test: applies to R records only")
        if self.key is not None and "component" in self.model_fields_set:
            raise ValueError("give component or key, not both")
        return self


class AstmPoint(PointSpec):
    """A point of a result message: its meaning (PointSpec) and where it is (``select``)."""

    select: Selector | None = Field(default=None, description="where the item is; none for the built-in points")
    type: Literal["text", "number", "datetime"] = Field(
        default="text", description="number: a decimal; datetime: YYYYMMDD[HHMM[SS]] in the device's time zone"
    )
    values: dict[str, str] | None = Field(
        default=None, description="text values as sent → canonical names; a value not listed is kept and flagged"
    )
    pending_statuses: list[str] = Field(
        default_factory=list,
        description="R.9 result statuses meaning 'not final yet'; the value is then `pending_value`",
    )
    pending_value: str = "in_progress"


class PositiveSpec(BaseModel):
    """Which point and value make a result positive: an alarm at once."""

    model_config = STRICT

    point: str
    value: str = "positive"
    alarm_parameter: str = Field(default="culture_positive", description="parameter of the alarm record")


class AstmProfile(DeviceMap):
    """One instrument's result messages."""

    points: dict[str, AstmPoint]  # type: ignore[assignment]
    accepted_versions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_VERSIONS), description="H.13 version strings taken without remark"
    )
    test_component: int = Field(default=4, ge=1, le=16, description="component of R.3 holding the test code")
    lot: Selector | None = Field(default=None, description="where the lot id is, when the message carries it")
    bottle_point: str | None = Field(default=None, description="point naming the bottle in alarm texts")
    specimen_point: str | None = Field(default=None, description="point holding the specimen id")
    positive: PositiveSpec | None = None
    correction_statuses: list[str] = Field(
        default_factory=lambda: ["C"],
        description="R.9 result statuses meaning a correction of a result sent before (E1394: C)",
    )
    result_key_points: list[str] | None = Field(
        default=None,
        description=(
            "points naming the sample a result belongs to; with the equipment and the test (R.3) they identify "
            "one result across messages (default: specimen_point and bottle_point)"
        ),
    )

    @property
    def key_points(self) -> list[str]:
        """The points that, with the equipment and the test, identify one result."""
        if self.result_key_points is not None:
            return self.result_key_points
        return [p for p in (self.specimen_point, self.bottle_point) if p is not None]

    @model_validator(mode="after")
    def _consistent(self) -> AstmProfile:
        missing = [p for p in BUILT_IN if p not in self.points]
        if missing:
            raise ValueError(f"a profile needs the built-in points {', '.join(missing)} (no select:)")
        stray = [p for p in BUILT_IN if self.points[p].select is not None]
        if stray:
            raise ValueError(f"built-in points {', '.join(stray)} are filled by the adapter: remove select:")
        unplaced = [n for n, p in self.points.items() if n not in BUILT_IN and p.select is None]
        if unplaced:
            raise ValueError(f"points {', '.join(unplaced)} need select: (where they are in a message)")
        refs = [r for r in (self.bottle_point, self.specimen_point, self.positive and self.positive.point) if r]
        refs += self.result_key_points or []
        unknown = [r for r in refs if r not in self.points]
        if unknown:
            raise ValueError(f"the profile names points it does not define: {', '.join(unknown)}")
        return self


def load_profile(path: Path) -> AstmProfile:
    """Load and check one profile file; ConfigError lists every problem as ``FILE:LINE: path: message``."""
    return load_yaml_model(path, AstmProfile, shape="a profile is a mapping with name:, points: ...")
