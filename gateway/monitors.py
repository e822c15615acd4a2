"""Record monitors: equipment-specific judgement that turns the records of a read into derived records.

The particle limits are built into the pipeline; other equipment brings its own monitors through its
adapter plugin (``plugin.monitors(equipment, device_map)``): a cold-chain excursion tracker for a
temperature DAQ, a freezing-profile conformance check for a controlled-rate freezer. One monitor is the
core's own and every equipment gets it after its plugin's (``gateway.runtime.build_pipeline``): the
clock-drift alarm of :mod:`gateway.clockdrift`, which judges the ``clock_offset_s`` adapters put on a
read, unless the site's ``clock.max_offset_s`` (or the equipment's) is null. A monitor sees
every row the pipeline is about to journal for that equipment, in order, and returns new rows —
alarms, events — which the pipeline completes with the equipment's identity and journals right after.

A returned row needs ``parameter``, ``kind``, ``value`` and ``gateway_time``; it may set ``unit``,
``quality`` (default Good), ``source`` (default ``equipment://<id>``), ``source_time`` and ``detail``.
Monitors keep their own state (an open excursion); they must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]


@runtime_checkable
class RecordMonitor(Protocol):
    def observe(self, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Rows derived from these rows (may be empty)."""
        ...
