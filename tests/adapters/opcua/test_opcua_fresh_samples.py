"""The device clock compared on fresh samples in the batch builder: what counts as a comparison. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua

from adapters.opcua.batch import BatchBuilder, ResolvedPoint
from adapters.opcua.nodemap import OpcUaPoint
from adapters.opcua.program import ProgramTracker


def point(name: str) -> ResolvedPoint:
    return ResolvedPoint(OpcUaPoint(name=name, parameter=name, node_id=f"s={name}"), f"opc.tcp://x/{name}",
                         node_id=ua.NodeId(name, 2))


def value(v: float, source: datetime | None) -> ua.DataValue:
    return ua.DataValue(ua.Variant(v, ua.VariantType.Double), SourceTimestamp=source,
                        ServerTimestamp=datetime.now(UTC))


def offset_after(builder: BatchBuilder, *pairs: tuple[ResolvedPoint, ua.DataValue]) -> float | None:
    builder.add_all(pairs)
    (batch,) = builder.take()
    return batch.clock_offset_s


def test_a_fresh_sample_compares_the_clock_and_the_first_value_of_a_point_does_not() -> None:
    temp, ph = point("temperature"), point("ph")
    builder = BatchBuilder("CP-1", [temp, ph], ProgramTracker(None))
    now = datetime.now(UTC)
    old = now - timedelta(hours=3)  # a value that has not changed for hours: not a comparison
    assert offset_after(builder, (temp, value(37.0, old)), (ph, value(7.2, now + timedelta(seconds=300)))) is None
    ahead = offset_after(builder, (temp, value(37.1, datetime.now(UTC) + timedelta(seconds=300))))
    assert ahead == pytest.approx(300, abs=0.5)
    # the same stamp again (a poll of an unchanged value) is no new comparison: the last one stands
    assert offset_after(builder, (temp, value(37.1, datetime.now(UTC) + timedelta(seconds=300)))) is not None
    same = datetime.now(UTC) - timedelta(seconds=5)
    builder.add(temp, value(37.2, same))
    builder.take()
    assert offset_after(builder, (temp, value(37.2, same))) == pytest.approx(-5, abs=0.5)


def test_a_clock_jumping_back_is_compared_and_a_burst_keeps_its_least_delayed_sample() -> None:
    temp = point("temperature")
    builder = BatchBuilder("CP-1", [temp], ProgramTracker(None))
    now = datetime.now(UTC)
    builder.add(temp, value(37.0, now))
    builder.take()
    assert offset_after(builder, (temp, value(37.1, datetime.now(UTC) - timedelta(seconds=3600)))) == pytest.approx(
        -3600, abs=0.5), "an earlier stamp than the last is a fresh sample too: the clock went back"
    ph, co2 = point("ph"), point("co2")
    builder = BatchBuilder("CP-1", [ph, co2], ProgramTracker(None))
    for p in (ph, co2):
        builder.add(p, value(1.0, now - timedelta(seconds=9)))
    builder.take()
    late, fresh = datetime.now(UTC) - timedelta(seconds=2), datetime.now(UTC) - timedelta(seconds=0.1)
    assert offset_after(builder, (ph, value(7.1, late)), (co2, value(5.1, fresh))) == pytest.approx(-0.1, abs=0.3)


def test_a_value_without_source_timestamp_compares_nothing() -> None:
    temp = point("temperature")
    builder = BatchBuilder("CP-1", [temp], ProgramTracker(None))
    bad = ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
    assert offset_after(builder, (temp, bad)) is None
    assert offset_after(builder, (temp, bad)) is None
