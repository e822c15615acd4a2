"""The ``kind: astm`` equipment entry of a site file. Pydantic only: no I/O beyond finding the profile file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from adapters.serial.astm.link import LinkSettings
from adapters.serial.astm.profile import AstmProfile, load_profile
from adapters.serial.astm.versions import ResultVersions
from adapters.serial.transport import SerialLineConfig
from gateway.config import STRICT, EquipmentConfig, data_file_path, existing_data_file


def profile_path(value: str, context: dict[str, Any] | None) -> Path:
    """A shipped profile by name (``config/astm-profiles/<name>.yaml``) or the site's own file."""
    return data_file_path(value, context, "astm-profiles")


class AstmTimers(BaseModel):
    """The E1381 timers, in seconds. The defaults are the standard's; change them only to match a device."""

    model_config = STRICT

    reply_s: float = Field(default=15.0, gt=0, le=600, description="sender: wait for ACK/NAK after ENQ or a frame")
    receive_s: float = Field(
        default=30.0, gt=0, le=600, description="receiver: wait for the next frame or EOT, then discard the transfer"
    )
    busy_retry_s: float = Field(default=10.0, gt=0, le=600, description="sender: wait after a NAK to ENQ")
    contention_s: float = Field(
        default=20.0, gt=0, le=600, description="the gateway's wait after its ENQ crossed the instrument's"
    )


class AstmEquipmentConfig(EquipmentConfig, SerialLineConfig):
    """An instrument speaking ASTM E1381 (LIS01-A2) frames with E1394 (LIS2-A2) messages on a serial line.

    The instrument sends results when it has them; the gateway ACKs a message's last frame only after
    the message is committed to the journal.
    """

    kind: Literal["astm"] = Field(description="this entry is read by the ASTM adapter")
    identity: Literal["equipment", "specimen"] = Field(
        default="specimen",
        description=(
            "specimen (the default for a culture reader): each result's lot comes from its specimen and is "
            "checked against the lots bound to equipment; a result for a lot bound nowhere is kept and flagged"
        ),
    )
    profile: str = Field(
        default="bactalert-lis2a2",
        min_length=1,
        description="a shipped profile by name (config/astm-profiles/<name>.yaml) or a file relative to this file",
    )
    timers: AstmTimers = Field(default_factory=AstmTimers)
    max_attempts: int = Field(
        default=6, ge=1, le=20, description="times one frame is sent before the send is abandoned (gateway sending)"
    )
    max_frame_chars: int = Field(
        default=240, ge=240, le=64_000, description="text characters a frame may carry (240 by the standard)"
    )
    encoding: Literal["ascii", "latin-1", "utf-8"] = Field(
        default="latin-1", description="character set of the message text (utf-8 only when agreed with the vendor)"
    )
    device_timezone: str = Field(default="UTC", description="IANA time zone of the instrument's clock")
    lot_pattern: str | None = Field(
        default=None,
        description="regular expression with a group named lot, applied to the specimen id (instead of the profile)",
    )
    query_interval_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="send a LIS2-A2 query for all results at connect and then at this interval (unset: never)",
    )
    sender_name: str = Field(default="cgt-gateway", min_length=1, description="H.5 of the messages the gateway sends")

    _profile_path: Path | None = PrivateAttr(default=None)
    _profile: AstmProfile | None = PrivateAttr(default=None)
    _versions: ResultVersions | None = PrivateAttr(default=None)

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str, info: ValidationInfo) -> str:
        return existing_data_file(value, info.context, "astm-profiles", "ASTM profile")

    @field_validator("device_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris or UTC)") from None
        return value

    @field_validator("lot_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"lot_pattern is not a regular expression: {exc}") from None
        if "lot" not in compiled.groupindex:
            raise ValueError("lot_pattern needs a group named lot, e.g. ^W\\d+-(?P<lot>[A-Z0-9-]+)$")
        return value

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> AstmEquipmentConfig:
        self._profile_path = profile_path(self.profile, info.context)
        return self

    @property
    def profile_path(self) -> Path:
        return self._profile_path or profile_path(self.profile, None)

    @property
    def endpoint(self) -> str:
        """The line part of every source URI: ``astm+serial:///dev/ttyUSB0`` or ``astm+socket://host:port``."""
        if self.port.startswith("socket://"):
            return "astm+" + self.port
        return "astm+serial://" + self.port

    def link_settings(self) -> LinkSettings:
        t = self.timers
        return LinkSettings(
            reply_s=t.reply_s, receive_s=t.receive_s, busy_retry_s=t.busy_retry_s, contention_s=t.contention_s,
            max_attempts=self.max_attempts, max_text=self.max_frame_chars,
        )

    def load_profile(self) -> AstmProfile:
        """The profile, loaded once per entry so the profile checked at load is the one that runs."""
        if self._profile is None:
            self._profile = load_profile(self.profile_path)
        return self._profile

    def result_versions(self) -> ResultVersions:
        """The versions of each result received since the gateway started, kept on the entry (not the adapter)
        so that after a reconnect a correction is still linked to the version it replaces."""
        if self._versions is None:
            self._versions = ResultVersions()
        return self._versions
