"""The instrument map file: what an SCPI instrument is asked, and what each field of its reply means.

A map extends the core's :class:`~gateway.points.DeviceMap` (what each point *means*) with the SCPI
side: the commands sent at connect, the queries of one scan and which point each field of a reply is,
the line terminations and a timeout. A reply with several fields (a channel list such as
``(@101:104)``) is one value per channel, in the order the map lists the points.

Errors come out as ``FILE:LINE: path: message`` lines, one per problem, raised as ConfigError.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from gateway.config import STRICT, load_yaml_model
from gateway.points import DeviceMap, PointSpec


class VisaPoint(PointSpec):
    """One field of a scan reply: its meaning (from PointSpec) and the instrument channel it comes from."""

    channel: str = Field(min_length=1, description="instrument channel as the instrument names it, e.g. 101")


class ScanQuery(BaseModel):
    """One query of a scan and the points its reply holds, field by field."""

    model_config = STRICT

    query: str = Field(min_length=2, description="SCPI query, e.g. MEAS:TEMP? TC,K,(@101:104) or READ?")
    points: list[str] = Field(min_length=1, description="the point of each comma-separated field of the reply")

    @field_validator("query")
    @classmethod
    def _is_query(cls, value: str) -> str:
        if "?" not in value.split()[0]:
            raise ValueError(f"{value!r} is not a query (its header has no '?'); commands go in on_connect")
        return value


class ClockQueries(BaseModel):
    """How to read the instrument's clock (SCPI-99 SYSTem:DATE? and SYSTem:TIME?), and how often."""

    model_config = STRICT

    date_query: str = Field(default="SYST:DATE?", min_length=2, description="answers year,month,day")
    time_query: str = Field(default="SYST:TIME?", min_length=2, description="answers hour,minute,second")
    every_n_scans: int = Field(
        default=60, ge=1, le=1_000_000,
        description="read the clock on the first scan after a connect and then every this many scans",
    )

    @field_validator("date_query", "time_query")
    @classmethod
    def _is_query(cls, value: str) -> str:
        if "?" not in value.split()[0]:
            raise ValueError(f"{value!r} is not a query (its header has no '?')")
        return value


class InstrumentMap(DeviceMap):
    """An SCPI instrument's map. Every point is read by exactly one scan query."""

    points: dict[str, VisaPoint]  # type: ignore[assignment]
    read_termination: str = Field(default="\n", min_length=1, description="end of every reply")
    write_termination: str = Field(default="\n", min_length=1, description="end of every command")
    timeout_s: float = Field(default=2.0, gt=0, le=120, description="seconds to wait for each reply")
    identity_query: str = Field(default="*IDN?", description="the IEEE 488.2 identification query")
    error_query: str | None = Field(
        default="SYST:ERR?", description="reads one entry of the error queue; null: the instrument has none"
    )
    max_errors_per_scan: int = Field(
        default=20, ge=1, le=1000, description="error-queue entries read after a scan at most (the queue's depth)"
    )
    on_connect: list[str] = Field(
        default_factory=list,
        description="commands sent after the identity check, in order (no replies): *CLS, UNIT:TEMP C, ROUT:SCAN",
    )
    scan: list[ScanQuery] = Field(min_length=1, description="the queries of one scan, in order")
    clock: ClockQueries | None = Field(
        default=None,
        description="read the instrument's clock to fill clock_offset_s (null: the instrument has no clock "
        "or it is not read)",
    )

    @field_validator("on_connect")
    @classmethod
    def _commands_have_no_reply(cls, value: list[str]) -> list[str]:
        for command in value:
            if not command.strip() or "?" in command.split()[0]:
                raise ValueError(f"{command!r}: on_connect takes commands without a reply, not queries")
        return value

    @model_validator(mode="after")
    def _every_point_read_once(self) -> InstrumentMap:
        read: dict[str, int] = {}
        for i, query in enumerate(self.scan):
            for name in query.points:
                if name not in self.points:
                    raise ValueError(f"scan.{i} names point {name!r}, which the map does not define")
                if name in read:
                    raise ValueError(f"point {name!r} is read by scan.{read[name]} and scan.{i}: read it once")
                read[name] = i
        unread = [p for p in self.points if p not in read]
        if unread:
            raise ValueError(f"points no scan query reads: {', '.join(unread)}")
        return self


def load_instrument_map(path: Path) -> InstrumentMap:
    """Load and check one map file; ConfigError lists every problem as ``FILE:LINE: path: message``."""
    return load_yaml_model(
        path, InstrumentMap, shape="an instrument map is a mapping with name:, scan:, points: ..."
    )
