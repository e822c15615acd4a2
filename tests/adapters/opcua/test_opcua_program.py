"""LADS ActiveProgram → run events, lot and step; quarantine in the batch builder. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from asyncua import ua

from adapters.opcua.batch import BatchBuilder, ResolvedPoint
from adapters.opcua.nodemap import OpcUaPoint, ProgramSpec
from adapters.opcua.program import ProgramTracker
from gateway.records import Quality

SPEC = ProgramSpec(state="state", run_id="run", lot="lot", template="tpl", step="step")


def feed(
    t: ProgramTracker, *updates: tuple[str, object]
) -> tuple[list[tuple[str, str]], tuple[str | None, str | None]]:
    for point, value in updates:
        t.update(point, value)
    return t.end_of_batch(), t.context()


def idle(t: ProgramTracker) -> None:
    feed(t, ("state", "Stopped"), ("run", ""), ("lot", ""), ("tpl", ""), ("step", ""))


def test_a_run_starts_with_its_lot_and_ends_when_the_state_leaves_running() -> None:
    t = ProgramTracker(SPEC)
    idle(t)
    # the run id may come before the lot in one publish: the event waits for the end of the batch
    events, ctx = feed(
        t, ("run", "R-1"), ("lot", "LOT-42"), ("tpl", "CAR-T-STD"), ("state", "Running.Execute"), ("step", "prime")
    )
    assert events == [("run_started", "run R-1 template CAR-T-STD lot LOT-42")]
    assert ctx == ("LOT-42", "prime")
    assert feed(t, ("step", "expansion")) == ([], ("LOT-42", "expansion"))
    events, ctx = feed(t, ("state", "Stopped"), ("run", ""), ("lot", ""), ("step", ""))
    assert events == [("run_ended", "run R-1 lot LOT-42: state Stopped")]
    assert ctx == ("LOT-42", "expansion")  # the batch that ended the run still belongs to it
    assert feed(t, ("state", "Stopped")) == ([], (None, None))


def test_a_cleared_run_id_ends_the_run() -> None:
    t = ProgramTracker(SPEC)
    idle(t)
    feed(t, ("run", "R-2"), ("lot", "L"), ("state", "Running.Execute"))
    events, _ = feed(t, ("run", ""))
    assert events == [("run_ended", "run R-2 lot L: run id cleared (state Running.Execute)")]


def test_a_run_going_at_connect_is_in_progress_not_started() -> None:
    t = ProgramTracker(SPEC)
    events, ctx = feed(
        t, ("state", "Running.Execute"), ("run", "R-3"), ("lot", "L3"), ("tpl", "WASH-ONLY"), ("step", "harvest")
    )
    assert events == [("run_in_progress", "run R-3 template WASH-ONLY lot L3")]
    assert ctx == ("L3", "harvest")


def test_a_run_that_starts_and_ends_in_one_batch_is_both() -> None:
    t = ProgramTracker(SPEC)
    idle(t)
    events, _ = feed(t, ("run", "R-4"), ("state", "Running.Execute"), ("lot", "L4"), ("state", "Aborted"))
    assert [e[0] for e in events] == ["run_started", "run_ended"]


def test_no_program_section_means_no_context() -> None:
    t = ProgramTracker(None)
    assert feed(t, ("run", "R")) == ([], (None, None))


def _point(name: str, path: str) -> ResolvedPoint:
    return ResolvedPoint(OpcUaPoint(name=name, browse_path=path), f"opc.tcp://h:1/ns=urn:x;{path}", ua.NodeId(path, 3))


def test_a_node_reported_unknown_is_quarantined_once_and_the_rest_flow() -> None:
    a, b = _point("a", "A"), _point("b", "B")
    builder = BatchBuilder("CP-1", [a, b], ProgramTracker(None))
    now = datetime.now(UTC)
    gone = ua.DataValue(None, StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown))
    builder.add(a, gone)
    builder.add(a, gone)
    builder.add(b, ua.DataValue(ua.Variant(1.0), SourceTimestamp=now, ServerTimestamp=now))
    (batch,) = builder.take()
    assert batch.events == [("node_quarantined", "a A: BadNodeIdUnknown")]
    ra, rb = batch.readings
    assert (ra.point, ra.quality, ra.value) == ("a", Quality.BAD_CONFIGURATION_ERROR, None)
    assert ra.detail and "BadNodeIdUnknown" in ra.detail
    assert (rb.point, rb.quality, rb.value, rb.source_time, rb.server_time) == ("b", Quality.GOOD, 1.0, now, now)
    assert not a.usable and b.usable


def test_a_pause_in_the_maps_active_states_does_not_end_the_run() -> None:
    spec = ProgramSpec(state="state", run_id="run", lot="run", active_states=["Running", "Paused"])
    t = ProgramTracker(spec)
    feed(t, ("state", "Idle"), ("run", ""))
    events, ctx = feed(t, ("run", "B-9"), ("state", "Running"))
    assert events == [("run_started", "run B-9 template ? lot B-9")] and ctx == ("B-9", None)
    assert feed(t, ("state", "Paused"))[0] == []
    assert feed(t, ("state", "Complete"))[0] == [("run_ended", "run B-9 lot B-9: state Complete")]


def test_a_point_never_appears_twice_in_a_batch_and_no_value_is_lost() -> None:
    """The core keys a batch's readings by point: a repeated point starts the next batch."""
    a, b = _point("a", "A"), _point("b", "B")
    builder = BatchBuilder("CP-1", [a, b], ProgramTracker(None))
    for rp, value in ((a, 1.0), (b, 10.0), (a, 2.0), (a, 3.0), (b, 20.0)):
        builder.add(rp, ua.DataValue(ua.Variant(value)))
    batches = builder.take()
    assert [[(r.point, r.value) for r in batch.readings] for batch in batches] == [
        [("a", 1.0), ("b", 10.0)],
        [("a", 2.0)],
        [("a", 3.0), ("b", 20.0)],
    ]
    (empty,) = builder.take()
    assert empty.readings == [] and empty.events == []


def test_each_cut_batch_carries_the_lot_of_its_moment() -> None:
    spec = ProgramSpec(state="state", run_id="run", lot="lot")
    points = {n: _point(n, n.upper()) for n in ("state", "run", "lot", "x")}
    builder = BatchBuilder("CP-1", list(points.values()), ProgramTracker(spec))
    for name, value in (("state", "Stopped"), ("run", ""), ("lot", ""), ("x", 1.0),
                        ("run", "R"), ("lot", "L"), ("state", "Running.Execute"), ("x", 2.0)):
        builder.add(points[name], ua.DataValue(ua.Variant(value)))
    first, second = builder.take()
    assert (first.lot_id, [r.value for r in first.readings if r.point == "x"]) == (None, [1.0])
    assert second.lot_id == "L" and [e[0] for e in second.events] == ["run_started"]  # idle at connect


def test_empty_batches_before_the_first_value_do_not_end_the_connect_phase() -> None:
    t = ProgramTracker(SPEC)
    assert feed(t) == ([], (None, None))  # the connect's (empty) quarantine batch
    events, _ = feed(t, ("run", "R-5"), ("lot", "L5"), ("state", "Running.Execute"))
    assert [e[0] for e in events] == ["run_in_progress"]
