"""An OQ protocol file: test cases with a site, a timeline of steps and acceptance criteria.

The vocabulary is small on purpose. Device knowledge stays in the site files (which simulators, which
equipment) and in the simulators (which faults exist); a case only says what to do when and what must
be true afterwards, so a QA reviewer can read the YAML as the protocol it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from gateway.config import load_yaml_model
from gateway.qualify.oq.acceptance import Criterion
from gateway.qualify.oq.filters import Strict
from gateway.qualify.oq.timeline import Step

PROTOCOL_DIR = Path(__file__).resolve().parents[3] / "config" / "oq"


PkiName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]


class Pki(Strict):
    """Certificates the case makes in its own folder before its site is loaded (a site checks that the
    files it names exist): ``clients`` are self-signed client key + certificate pairs, named in the site as
    ``${pki.NAME.cert}`` and ``${pki.NAME.key}``; ``expired_clients`` the same, but their validity ended a
    day before the case (a certificate nobody renewed)."""

    clients: list[PkiName] = Field(default_factory=list)
    expired_clients: list[PkiName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> Pki:
        names = [*self.clients, *self.expired_clients]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"pki names {', '.join(twice)} more than once")
        return self


class Case(Strict):
    #: ``OQ-04``, a variant ``OQ-04b``, a long form ``OQ-04L`` (DOMAIN.md 6.6 numbering).
    id: str = Field(pattern=r"^OQ-\d{2}[a-zA-Z]?$")
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


class Protocol(Strict):
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
