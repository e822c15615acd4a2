"""One equipment's path from a ReadingBatch to journal-ready drafts: normalise, derive, judge limits.

Also writes the gaps: when the link is lost every parameter of the equipment gets a bad-quality
record and a ``communication`` event says why, so a reader of the journal sees the outage as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from gateway.config import EquipmentConfig
from gateway.identity.attribution import Attribution
from gateway.limits import ALARM_VALUES, LimitMonitor, ParticleLimits
from gateway.monitors import RecordMonitor
from gateway.normalise import Normalised, normalise_readings, plain_read
from gateway.particles import UNIT as CONCENTRATION_UNIT
from gateway.particles import concentration_parameter, concentrations
from gateway.points import DeviceMap
from gateway.records import DRAFT_FIELDS, Kind, Quality, ReadingBatch, RecordDraft, trusted_draft, utc_now

#: A draft and the raw wire bytes it came from; the journal commits both.
Entry = tuple[RecordDraft, bytes | None]

_DRAFTS = TypeAdapter(list[RecordDraft])


def _drafts(rows: list[dict[str, Any]], trusted: range) -> list[RecordDraft]:
    """The rows as drafts: those in ``trusted`` built directly, the others validated in full (one call)."""
    if len(trusted) == len(rows):
        return [trusted_draft(row) for row in rows]
    validated = iter(_DRAFTS.validate_python([row for i, row in enumerate(rows) if i not in trusted]))
    return [trusted_draft(row) if i in trusted else next(validated) for i, row in enumerate(rows)]


class EquipmentPipeline:
    """Stateful per equipment: limit levels and the last source of each parameter live here."""

    def __init__(
        self,
        equipment: EquipmentConfig,
        device_map: DeviceMap,
        config_hash: str,
        limits: ParticleLimits | None = None,
        monitors: Sequence[RecordMonitor] = (),
        attribution: Attribution | None = None,
    ) -> None:
        self.equipment = equipment
        self.device_map = device_map
        self.monitor = LimitMonitor(limits) if limits is not None else None
        self.monitors = list(monitors)
        #: The chain of identity: which lot each record belongs to (None: the device's own context only).
        self.attribution = attribution
        base = {
            "equipment_id": equipment.id,
            "equipment_class": equipment.equipment_class,
            "isa95": equipment.isa95,
            "config_hash": config_hash,
        }
        # Validated once here, so the records of every read can take these values as they are.
        probe = RecordDraft.model_validate(
            {**base, "parameter": "-", "source": "-", "kind": Kind.EVENT, "value": None,
             "quality": Quality.GOOD, "gateway_time": utc_now()}
        )
        self._base: dict[str, Any] = {name: getattr(probe, name) for name in base}
        self._template = {**DRAFT_FIELDS, **self._base}  # every field: a row of a read starts as a copy
        self._sources: dict[str, str] = {}

    @property
    def parameters(self) -> dict[str, Kind]:
        """Every parameter this equipment journals, with its kind, including derived concentrations."""
        names = {p.parameter: p.kind for p in self.device_map.points.values() if p.parameter is not None}
        if self.device_map.particle_counter is not None:
            for c in self.device_map.particle_counter.channels:
                names[concentration_parameter(c.size_um)] = Kind.MEASUREMENT
        return names

    def process(self, batch: ReadingBatch) -> list[Entry]:
        """Drafts for one device read, in a stable order: events, points, concentrations, alarms."""
        rows: list[dict[str, Any]] = []
        raws: list[bytes | None] = []
        gateway_time = batch.readings[0].gateway_time if batch.readings else None
        for name, detail in batch.events:
            rows.append(self._event("device_event", name, detail, gateway_time or utc_now(), None))
            raws.append(None)
        normalised = normalise_readings(batch.readings, self.device_map)
        first = len(rows)  # from here to `last`: rows built by this code from checked values
        for item in normalised:
            if item.spec is None or item.spec.parameter is not None:  # item.journalled, inlined
                rows.append(self._row(item))
                raws.append(item.reading.raw)
        values = {n.reading.point: n for n in normalised}  # the latest of each point feeds derivations
        pc = self.device_map.particle_counter
        if pc is not None and values:
            concs = concentrations(pc, values)
            for conc in concs:
                rows.append(self._derived(conc.channel, conc.parameter, conc.value, conc.quality, conc.detail,
                                          kind=Kind.MEASUREMENT, unit=CONCENTRATION_UNIT))
                raws.append(None)
            if self.monitor is not None:
                for alarm in self.monitor.evaluate(concs):
                    ch = alarm.concentration.channel
                    rows.append(self._derived(ch, alarm.concentration.parameter, ALARM_VALUES[alarm.level],
                                              Quality.GOOD, alarm.detail, kind=Kind.ALARM, unit=None))
                    raws.append(None)
        last = len(rows) if plain_read(normalised, batch) else first
        if batch.clock_offset_s is not None:  # the device clock as last compared, on every record of the read
            for row in rows:
                row["clock_offset_s"] = batch.clock_offset_s
        for monitor in self.monitors:
            for derived in monitor.observe(rows):
                rows.append(self._monitored(derived))
                raws.append(None)
        for exception in self._attribute(rows, batch.lot_id, batch.process_step):
            rows.append(exception)
            raws.append(None)
        return list(zip(_drafts(rows, range(first, last)), raws, strict=True))

    def _attribute(self, rows: list[dict[str, Any]], lot_id: str | None, step: str | None) -> list[dict[str, Any]]:
        """Lot context on every row (the binding at its moment, or the device's); exception rows to add."""
        if self.attribution is not None:
            return [self._monitored(e) for e in self.attribution.apply(rows, lot_id, step)]
        if lot_id is not None or step is not None:
            for row in rows:
                row.update(lot_id=lot_id, process_step=step)
        return []

    def _monitored(self, derived: dict[str, Any]) -> dict[str, Any]:
        """A monitor's row completed with this equipment's identity and the defaults it may leave out."""
        return {
            "source": f"equipment://{self.equipment.id}",
            "quality": Quality.GOOD,
            **derived,
            **self._base,
        }

    def communication_lost(self, quality: Quality, detail: str, at: datetime) -> list[Entry]:
        """The gap as data: a ``lost`` event, then every parameter bad from ``at`` on.

        A device refused for its configuration (a wrong identity, an untrusted certificate) is
        ``refused`` rather than ``lost``: it answered, and what it said was not what the site expects.
        """
        value = "refused" if quality is Quality.BAD_CONFIGURATION_ERROR else "lost"
        rows = [self._event("communication", value, detail, at, quality)]
        for parameter, kind in self.parameters.items():
            rows.append({
                **self._base,
                "parameter": parameter,
                "source": self._sources.get(parameter, f"equipment://{self.equipment.id}/{parameter}"),
                "kind": kind,
                "value": None,
                "quality": quality,
                "gateway_time": at,
                "detail": detail,
            })
        self._attribute(rows, None, None)
        return [(d, None) for d in _DRAFTS.validate_python(rows)]

    def communication_restored(self, detail: str, at: datetime) -> list[Entry]:
        rows = [self._event("communication", "restored", detail, at)]
        self._attribute(rows, None, None)
        return [(d, None) for d in _DRAFTS.validate_python(rows)]

    def _row(self, item: Normalised) -> dict[str, Any]:
        """A record of a point, as normalised, with the device result it is a version of when the adapter says."""
        spec = item.spec
        row = self._derived(
            item, item.parameter, item.value, item.quality, item.detail,
            kind=Kind.MEASUREMENT if spec is None else spec.kind, unit=None if spec is None else spec.unit,
        )
        reading = item.reading
        if reading.result_key is not None or reading.corrects is not None:
            row["result_key"], row["corrects"] = reading.result_key, reading.corrects
        return row

    def _derived(
        self,
        item: Normalised,
        parameter: str,
        value: Any,
        quality: Quality,
        detail: str | None,
        *,
        kind: Kind,
        unit: str | None,
    ) -> dict[str, Any]:
        """A record computed from a point's reading: it keeps that reading's source and times."""
        reading = item.reading
        self._sources[parameter] = reading.source
        row = self._template.copy()
        row["parameter"] = parameter
        row["source"] = reading.source
        row["kind"] = kind
        row["value"] = value
        row["unit"] = unit
        row["quality"] = quality
        row["source_time"] = reading.source_time
        row["server_time"] = reading.server_time
        row["gateway_time"] = reading.gateway_time
        row["detail"] = detail
        return row

    def _event(
        self, parameter: str, value: str, detail: str | None, at: datetime, quality: Quality | None = None
    ) -> dict[str, Any]:
        return {
            **self._base,
            "parameter": parameter,
            "source": f"equipment://{self.equipment.id}",
            "kind": Kind.EVENT,
            "value": value,
            "quality": quality or Quality.GOOD,
            "gateway_time": at,
            "detail": detail,
        }

