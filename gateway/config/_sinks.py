"""What every ``sinks:`` entry of a site file has; each sink type extends :class:`SinkConfig`.

Kept with the other config models (not with the sinks) so the loader can build the site model
without importing any sink.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.config._models import STRICT, Identifier


class BatchingConfig(BaseModel):
    model_config = STRICT

    max_records: int = Field(default=500, ge=1, le=50_000, description="most records in one write")
    max_age_s: float = Field(
        default=0.5, ge=0, le=3600, description="longest a committed record waits for a batch to fill"
    )


class RetryConfig(BaseModel):
    model_config = STRICT

    initial_s: float = Field(default=0.5, gt=0, description="first wait after a failed write")
    max_s: float = Field(default=30.0, gt=0, description="cap of the exponential backoff")
    jitter: float = Field(default=0.2, ge=0, le=1, description="± fraction of random jitter per wait")


class SinkConfig(BaseModel):
    """What every entry under ``sinks:`` has; each sink type adds its own fields."""

    model_config = STRICT

    name: Identifier = Field(description="sink name, unique in the site file; names its cursor in the journal")
    type: str = Field(description="the sink type: http, mqtt, file, opcua-server")
    enabled: bool = True
    batch: BatchingConfig = BatchingConfig()
    retry: RetryConfig = RetryConfig()
    late_after_s: float = Field(
        default=60.0, ge=0, description="a record sent this long after it was committed is marked delivery.late"
    )
