"""Limit tables as data: regulatory action limits by grade, room state and particle size."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.config._yaml import load_yaml_model
from gateway.errors import ConfigError


class LimitTable(BaseModel):
    """A table of action limits by grade, room state and particle size (µm → particles/m³)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    citation: str = Field(description="the short form alarm texts cite, e.g. 'EU GMP Annex 1 (2022) Table 5'")
    unit: Literal["/m3"] = "/m3"
    limits: dict[str, dict[Literal["at_rest", "in_operation"], dict[float, float]]] = Field(
        description="grade -> state -> size in µm -> maximum particles/m³"
    )


def load_limit_table(name: str, search_dirs: list[Path]) -> LimitTable:
    """``config/limits/<name>.yaml`` from the first directory that has it."""
    for base in search_dirs:
        path = base / "limits" / f"{name}.yaml"
        if path.is_file():
            return load_yaml_model(path, LimitTable, shape="a limit table is a mapping with name:, limits: ...")
    looked = ", ".join(str(d / "limits") for d in search_dirs)
    raise ConfigError(f"limit table {name!r} not found (looked in {looked})")
