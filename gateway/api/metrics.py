"""Prometheus metrics of a running gateway, read from its parts at scrape time.

A registry of the API's own (never the process-global one, so two gateways in one process, as in the
tests, do not mix). Only numbers and equipment or sink names: no lot ids, no values.
Readings per second are ``rate(cgt_device_records_total[1m])`` on the Prometheus side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway.api.events import LiveState
from gateway.records import utc_now

if TYPE_CHECKING:
    from gateway.runtime import RunningGateway


class GatewayCollector(Collector):
    def __init__(self, running: RunningGateway, live: LiveState) -> None:
        self.running = running
        self.live = live

    def collect(self) -> Iterator[Metric]:
        now = utc_now()
        up = GaugeMetricFamily("cgt_device_up", "1 while the device answers, 0 while it is down or not yet up",
                               labels=["equipment_id"])
        records = CounterMetricFamily("cgt_device_records", "records committed for the device since the start",
                                      labels=["equipment_id"])
        failures = CounterMetricFamily("cgt_device_failures", "failed connects and reads since the start",
                                       labels=["equipment_id"])
        age = GaugeMetricFamily("cgt_device_last_value_age_seconds",
                                "seconds since the device's newest record was committed", labels=["equipment_id"])
        for sup in self.running.supervisors:
            eq, health = sup.equipment.id, sup.health
            up.add_metric([eq], 1.0 if health.state == "up" else 0.0)
            records.add_metric([eq], float(health.records))
            failures.add_metric([eq], float(health.failures))
            newest = self.live.newest.get(eq)
            if newest is not None:
                age.add_metric([eq], max(0.0, (now - newest).total_seconds()))
        yield from (up, records, failures, age)

        backlog = GaugeMetricFamily("cgt_sink_backlog_records", "committed records the sink has not settled",
                                    labels=["sink"])
        backlog_age = GaugeMetricFamily("cgt_sink_backlog_age_seconds",
                                        "seconds the sink's oldest unsettled record has waited", labels=["sink"])
        delivered = CounterMetricFamily("cgt_sink_delivered", "records the sink delivered since the start",
                                        labels=["sink"])
        sink_up = GaugeMetricFamily("cgt_sink_up", "1 while the sink forwards or is idle, 0 while it backs off",
                                    labels=["sink"])
        for forwarder in self.running.forwarders:
            s = forwarder.snapshot()
            backlog.add_metric([s.name], float(s.backlog))
            backlog_age.add_metric([s.name], s.backlog_age_s)
            delivered.add_metric([s.name], float(s.delivered))
            sink_up.add_metric([s.name], 1.0 if s.state in ("forwarding", "idle") else 0.0)
        yield from (backlog, backlog_age, delivered, sink_up)

        journal = self.running.journal
        used, free = journal.storage()
        yield GaugeMetricFamily("cgt_journal_size_bytes", "bytes the journal files take", value=float(used))
        yield GaugeMetricFamily("cgt_journal_disk_free_bytes", "bytes free on the journal's disk", value=float(free))
        yield GaugeMetricFamily("cgt_journal_last_seq", "the last committed seq", value=float(journal.last_seq))


def make_registry(running: RunningGateway, live: LiveState) -> tuple[CollectorRegistry, Counter]:
    """The API's registry, and the counter of refused API requests it also exposes."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(running, live))
    refused = Counter("cgt_api_auth_failures", "API requests refused for their token or role",
                      ["reason"], registry=registry)
    return registry, refused
